"""SafeCall: weekly automated wellness-check calls (안심콜)."""

__version__ = "0.3.0"
