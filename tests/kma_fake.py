"""A local fake of the KMA API hub's 특보 현황 (wrn_now_data.php) for tests: a real HTTP server on 127.0.0.1.

It answers as the hub does: a comment header naming the columns, then one comma-separated row per region and
advisory in force; 401 for a wrong authKey. Tests set the rows and read the requests it received."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

AUTH_KEY = "fake-kma-auth-key-0001"
PATH = "/api/typ01/url/wrn_now_data.php"
HEADER = "# REG_UP, REG_UP_KO, REG_ID, REG_KO, TM_FC, TM_EF, WRN, LVL, CMD, ED_TM"


class FakeKma:
    def __init__(self):
        self.rows: list[tuple[str, ...]] = []  # (REG_ID, REG_KO, TM_FC, WRN, LVL, CMD)
        self.requests: list[dict[str, list[str]]] = []
        self.failures: list[int] = []  # HTTP statuses to answer with before answering properly
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{PATH}"

    def start(self) -> FakeKma:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def advise(
        self, region_id: str, region: str, issued: str, wrn: str, lvl: str = "주의보", cmd: str = "발표"
    ) -> None:
        self.rows.append((region_id, region, issued, wrn, lvl, cmd))

    def body(self) -> str:
        lines = ["#START7777", "#" + "-" * 60, "#  특보현황 조회", "#" + "-" * 60, HEADER]
        for region_id, region, issued, wrn, lvl, cmd in self.rows:
            lines.append(
                f"{region_id[:3]}00000, 상위구역, {region_id}, {region}, {issued}, {issued}, {wrn}, {lvl}, {cmd}, "
            )
        lines.append("#7777END")
        return "\n".join(lines) + "\n"

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                query = parse_qs(url.query, keep_blank_values=True)
                fake.requests.append(query)
                if url.path != PATH:
                    return self._answer(404, "no such API")
                if fake.failures:
                    return self._answer(fake.failures.pop(0), "temporarily unavailable")
                if query.get("authKey") != [AUTH_KEY]:
                    return self._answer(401, "Unauthorized: authKey")
                self._answer(200, fake.body())

            def _answer(self, status: int, text: str):
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler
