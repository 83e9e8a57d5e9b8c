"""A local fake of SOLAPI's REST API for tests: a real HTTP server on 127.0.0.1 that checks requests as SOLAPI's
documentation describes them, and plays the carriers' delivery reports.

What it checks (docs.solapi.com: authentication/api-key, messages send-many, message-status-codes):
- Authorization: `HMAC-SHA256 apiKey=<key>, date=<ISO 8601>, salt=<12-64 chars>, signature=<hex>` where the
  signature is HMAC-SHA256(API secret, date + salt); the date within 15 minutes; a signature used once.
  403 InvalidAPIKey / SignatureDoesNotMatch / RequestTimeTooSkewed / DuplicatedSignature otherwise.
- Each message: `to` and `from` (a registered sender, else 1062); type SMS, LMS or ATA; SMS text at most 90
  EUC-KR bytes (1031), EUC-KR characters only (1029) and no subject (1013); LMS at most 2000 bytes and a subject
  of at most 40 (1014); kakaoOptions only for ATA (1033); ATA: a known pfId (1041) and templateId (1042), every
  variable of the template given (1043).
A message is accepted with 2000, then on reads goes to 3000 (with the carrier) and to its outcome: 4000 or the
failure code a test set for the number. 알림톡 to a number without KakaoTalk is sent again as SMS/LMS when
disableSms is false (대체 발송), as SOLAPI does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_KEY = "NCSFAKEKEY0000001"
API_SECRET = "fake-solapi-secret-for-tests-0000000001"
SENDER = "0221481234"  # the office's registered 발신번호
PF_ID = "KA01PF000000000000000000000001"
TEMPLATES = {
    "KA01TP0000UNREACHABLE": "[안심콜] #{이름}님이 안부 전화에 응답하지 않아 담당자가 방문합니다. 문의 #{회신번호}",
    "KA01TP000000000000HELP": "[안심콜] #{이름}님이 안부 전화로 도움을 요청해 오늘 연락드립니다. 문의 #{회신번호}",
}
AUTHORIZATION = re.compile(
    r"HMAC-SHA256 apikey=(?P<key>[^,]+), date=(?P<date>[^,]+), salt=(?P<salt>[^,]+), "
    r"signature=(?P<signature>[0-9a-f]{64})",
    re.IGNORECASE,
)
STATUS_TEXT = {
    "2000": "정상 접수(이통사로 접수 예정) ",
    "3000": "이통사로 접수(리포트를 기다리는 중)",
    "4000": "발송 처리 완료",
    "3043": "단말기 Power off",
    "3104": "카카오톡 미사용자",
}


def sms_table(
    base_url: str, api_key: str = '{ env = "SOLAPI_KEY" }', api_secret: str = '{ env = "SOLAPI_SECRET" }'
) -> str:
    """The [sms] table of safecall.toml for SOLAPI at base_url; the key and secret as secret references."""
    return f'''
[sms]
provider = "solapi"
api_key = {api_key}
api_secret = {api_secret}
sender = "02-2148-1234"
callback_number = "02-2148-1234"
base_url = "{base_url}"
'''


def euc_kr_length(text: str) -> int | None:
    try:
        return len(text.encode("euc-kr"))
    except UnicodeEncodeError:
        return None


class FakeSolapi:
    def __init__(self):
        self.requests: list[dict] = []  # every send request body, as received
        self.messages: dict[str, dict] = {}  # messageId -> stored message
        self.handsets: dict[str, list[dict]] = {}  # number -> texts that reached it: {type, text, replacement}
        self.outcomes: dict[str, list[str]] = {}  # number -> final codes for its next messages (default 4000)
        self.no_kakao: set[str] = set()  # numbers whose owner has no KakaoTalk (알림톡 fails with 3104)
        self.send_failures: list[tuple[int, str]] = []  # (HTTP status, errorMessage) to answer the next sends with
        self.refusals: list[str] = []  # each request refused, why
        self.signatures: set[str] = set()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                error = fake.check_authorization(self.headers.get("Authorization", ""))
                if error:
                    fake.refusals.append(error)
                    self._reply(403 if error != "Unauthorized" else 401, {"errorCode": error, "errorMessage": error})
                return error is None

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if urlsplit(self.path).path != "/messages/v4/send-many/detail":
                    return self._reply(404, {"errorCode": "NotFound", "errorMessage": self.path})
                if not self._authorised():
                    return
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    return self._reply(400, {"errorCode": "ValidationError", "errorMessage": "JSON only"})
                with fake.lock:
                    if fake.send_failures:
                        status, said = fake.send_failures.pop(0)
                        return self._reply(
                            status,
                            {"errorCode": "ValidationError" if status < 500 else "InternalError", "errorMessage": said},
                        )
                    request = json.loads(body)
                    fake.requests.append(request)
                    self._reply(200, fake.accept(request))

            def do_GET(self):
                url = urlsplit(self.path)
                if url.path not in ("/messages/v4/list", "/messages/v4/list-old"):
                    return self._reply(404, {"errorCode": "NotFound", "errorMessage": self.path})
                if not self._authorised():
                    return
                wanted = parse_qs(url.query).get("messageId", [])
                with fake.lock:
                    found = {mid: fake.progress(mid) for mid in wanted if mid in fake.messages}
                self._reply(200, {"limit": 20, "messageList": found, "startKey": None, "nextKey": None})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeSolapi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def check_authorization(self, header: str) -> str | None:
        match = AUTHORIZATION.fullmatch(header)
        if not match:
            return "Unauthorized"
        if match["key"] != API_KEY:
            return "InvalidAPIKey"
        try:
            date = datetime.fromisoformat(match["date"].replace("Z", "+00:00"))
        except ValueError:
            return "SignatureDoesNotMatch"
        if date.tzinfo is None or abs(datetime.now(UTC) - date) > timedelta(minutes=15):
            return "RequestTimeTooSkewed"
        if not 12 <= len(match["salt"]) <= 64:
            return "SignatureDoesNotMatch"
        expected = hmac.new(API_SECRET.encode(), (match["date"] + match["salt"]).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["signature"]):
            return "SignatureDoesNotMatch"
        with self.lock:
            if match["signature"] in self.signatures:
                return "DuplicatedSignature"
            self.signatures.add(match["signature"])
        return None

    def refusal(self, message: dict) -> str | None:
        """The status code SOLAPI refuses this message with, or None."""
        if not message.get("to") or not message.get("from"):
            return "1010"
        if message["from"] != SENDER:
            return "1062"
        kind, text, subject = message.get("type"), message.get("text") or "", message.get("subject")
        kakao = message.get("kakaoOptions")
        if kind not in ("SMS", "LMS", "ATA"):
            return "1025"
        if kakao and kind != "ATA":
            return "1033"
        if kind == "SMS":
            size = euc_kr_length(text)
            if size is None:
                return "1029"
            if subject:
                return "1013"
            return "1031" if not text or size > 90 else None
        if kind == "LMS":
            if subject and len(subject.encode("euc-kr", "replace")) > 40:
                return "1014"
            return "1031" if not text or len(text.encode("euc-kr", "replace")) > 2000 else None
        if not kakao or kakao.get("pfId") != PF_ID:
            return "1041"
        template = TEMPLATES.get(kakao.get("templateId"))
        if template is None:
            return "1042"
        needed = set(re.findall(r"#\{[^}]+\}", template))
        return "1043" if needed - set(kakao.get("variables") or {}) else None

    def accept(self, request: dict) -> dict:
        group_id = "G4V" + uuid.uuid4().hex[:29].upper()
        accepted, failed = [], []
        for message in request.get("messages", []):
            message_id = "M4V" + uuid.uuid4().hex[:29].upper()
            code = self.refusal(message)
            record = {
                "messageId": message_id,
                "groupId": group_id,
                "to": message.get("to"),
                "from": message.get("from"),
                "type": message.get("type"),
                "country": "82",
                "accountId": "12925149",
                "statusCode": code or "2000",
                "statusMessage": STATUS_TEXT.get(code or "2000", f"오류 {code}"),
                "customFields": {},
            }
            if code:
                failed.append(record)
                continue
            outcomes = self.outcomes.get(message["to"], [])
            final = outcomes.pop(0) if outcomes else "4000"
            if message["type"] == "ATA" and message["to"] in self.no_kakao:
                final = "3104"
            self.messages[message_id] = {**message, **record, "final": final, "log": [], "replacement": False}
            accepted.append({k: record[k] for k in ("messageId", "statusCode", "statusMessage", "customFields")})
        now = datetime.now(UTC).isoformat()
        cash = {"requested": 0, "replacement": 0, "refund": 0, "sum": 0}
        count = {
            "total": len(accepted) + len(failed),
            "sentTotal": 0,
            "sentFailed": 0,
            "sentSuccess": 0,
            "sentPending": 0,
            "sentReplacement": 0,
            "refund": 0,
            "registeredFailed": len(failed),
            "registeredSuccess": len(accepted),
        }
        group = {
            "count": count,
            "countForCharge": {"sms": {}, "lms": {}, "ata": {}},
            "balance": cash,
            "point": cash,
            "app": {"profit": {}, "appId": None},
            "log": [],
            "status": "SENDING",
            "allowDuplicates": False,
            "isRefunded": False,
            "accountId": "12925149",
            "masterAccountId": None,
            "apiVersion": "4",
            "groupId": group_id,
            "price": {"82": {"sms": 20, "lms": 50, "ata": 13}},
            "dateCreated": now,
            "dateUpdated": now,
        }
        listed = {"messageList": accepted} if request.get("showMessageList") else {}
        return {"groupInfo": group, "failedMessageList": failed, **listed}

    def progress(self, message_id: str) -> dict:
        """Each read moves a message one step: 2000 -> 3000 -> its outcome (the carrier's report)."""
        message = self.messages[message_id]
        if message["statusCode"] == "2000":
            message["statusCode"] = "3000"
        elif message["statusCode"] == "3000":
            message["statusCode"] = message["final"]
            if message["final"] == "3104" and not message["kakaoOptions"].get("disableSms"):
                self.replace_by_text(message)
            elif message["final"] == "4000":
                self.handsets.setdefault(message["to"], []).append(
                    {"type": message["type"], "text": self.text_of(message), "replacement": False}
                )
        message["statusMessage"] = STATUS_TEXT.get(message["statusCode"], message["statusCode"])
        return {k: v for k, v in message.items() if k != "final"}

    def text_of(self, message: dict) -> str:
        if message["type"] != "ATA":
            return message["text"]
        text = TEMPLATES[message["kakaoOptions"]["templateId"]]
        for variable, value in message["kakaoOptions"]["variables"].items():
            text = text.replace(variable, value)
        return text

    def replace_by_text(self, message: dict) -> None:
        """대체 발송: the 알림톡's text as SMS (LMS when longer than 90 bytes) from the same sender."""
        text = self.text_of(message)
        kind = "SMS" if (euc_kr_length(text) or 91) <= 90 else "LMS"
        self.handsets.setdefault(message["to"], []).append({"type": kind, "text": text, "replacement": True})
        message.update(statusCode="4000", replacement=True)
        message["log"].append({"message": f"카카오톡 미사용자: {kind}로 대체 발송되었습니다."})
