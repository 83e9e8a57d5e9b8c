"""SafeCall: weekly automated wellness-check calls (안심콜)."""

__version__ = "0.1.0"
