"""One Korean word for each concept shown to people (docs/glossary.md is the same list, for people).

The lists, the web pages, the reports, the e-mails and the CLI read their words from here or from the catalogue
entries that tests/test_glossary.py checks against here. Words are those a 주민센터 uses in its own papers.
AVOID maps a word people must not see to the glossary word to use instead: the test fails on it and says which.
"""

from __future__ import annotations

from safecall.domain import DISPOSITION_KOREAN  # the floor holds the call results' words; they are listed here too

# Why a person is on a list.
REASON = {
    "number_check": "번호 확인 필요",  # a number that does not exist: not a non-answer
    "weeks_unanswered": "{weeks}주 연속 미응답",
    "answered_no_key": "받았으나 버튼 안 누름",
    "help_requested": "도움 요청(2번)",
}

# Columns of the visit, call-back and number lists (CSV, XLSX, JSON keys are the English keys).
COLUMN = {
    "rank": "순위",
    "task": "과제번호",
    "team": "담당팀",
    "overdue": "기한 초과",
    "name": "성명",
    "phone": "전화번호",
    "phone2": "보조 전화번호",
    "address": "주소",
    "dong": "행정동",
    "guardian": "보호자",
    "guardian_phone": "보호자 연락처",
    "reason": "명단 사유",
    "notes": "이전 방문 메모",
    "weeks_without_ack": "연속 미응답 주수",
    "answered_without_key": "받았으나 버튼 안 누름",
    "risk": "위험도",
    "attempts": "통화 시도 내역",
    "last_ack": "마지막 응답일",
    "since": "등록일",
    "moved_from": "이관",
    "risk_speech": "위험 발언",
}

# What a visit or a call-back found.
OUTCOME = {
    "safe": "안전 확인",
    "not_home": "부재(재방문)",
    "hospitalised": "입원(날짜까지)",
    "emergency_services": "119 인계",
    "moved": "이사",
    "deceased": "사망",
    "called_safe": "통화함: 안전 확인",
    "called_referred": "통화함: 서비스 연계",
    "called_no_answer": "통화 안 됨(다시 걸기)",
    "number_fixed": "번호 수정함",
    "no_contact": "연락처 없음",
    "pending": "결과 대기",
    "acknowledged_late": "늦게 1번 응답(자동 종료)",
}

# Typed words accepted for a keyword besides the glossary word and the English keyword (short forms people type).
KEYWORD_ALIASES = {
    "outcome": {
        "안전": "safe",
        "부재": "not_home",
        "입원": "hospitalised",
        "긴급출동": "emergency_services",
        "통화안전": "called_safe",
        "서비스연계": "called_referred",
        "통화안됨": "called_no_answer",
        "번호수정": "number_fixed",
    },
    "status": {"활성": "active", "이용중": "active", "중지": "paused"},
    "role": {"팀원": "team", "방문팀": "team", "공무원": "officer", "담당자": "officer"},
}

# What one call came to.
DISPOSITION = {str(key): word for key, word in DISPOSITION_KOREAN.items()} | {"in progress": "진행 중"}

# Where a person stands: on the roster, and in one week's run (in_call only while a call is really going on).
STATUS = {"active": "안심콜 이용 중", "paused": "일시 중지", "closed": "종료"}
CLOSE_REASON = {"hospitalised": "입원", "moved": "이사", "deceased": "사망", "declined": "거부", "other": "기타"}
MEMBER_STATE = {
    "pending": "전화 대기",
    "in_call": "통화 중",
    "acknowledged": "응답(1번)",
    "help_requested": "도움 요청(2번)",
    "unreachable": "최종 무응답",
    "withdrawn": "제외(중지·종료)",
}
RUN_LABEL = {"weekly": "정기", "signals": "신호 확인"}
RUN_STATUS = {"open": "진행 중", "closed": "종료"}

# What an audit record is about ("task 12", "visit list 1팀"): stored in English, shown in these words.
AUDIT_SUBJECT = {"task": "과제", "person": "대상자", "run": "회차", "user": "사용자", "roster": "명단 파일"}
ALL_TEAMS = "모든 팀"

# What came of putting a call for help through to the duty officer (issue 30), on the call-back page.
TRANSFER = {
    "connected": "당직자와 연결됨",
    "no_answer": "당직자가 받지 않음",
    "busy": "당직자 통화 중",
    "failed": "당직자 연결 실패",
}

# Roles of web accounts.
ROLE = {"team": "방문팀원", "officer": "담당 공무원", "admin": "관리자"}

# Lists, and the labels of the weekly report.
LIST_KIND = {"visit": "방문", "callback": "회신", "number": "번호 확인"}
REPORT = {
    "called": "통화 대상",
    "acknowledged": "응답",
    "help": "도움 요청",
    "final_no_answer": "최종 무응답",
    "visits": "방문",
    "outcome": "결과",
    "sheet": "주간 보고",
}

# Actions on buttons and in messages.
ACTION = {
    "disable": "사용 중지",
    "reset": "비밀번호 재설정",
    "save_callback": "회신 결과 저장",
    "record_visit": "방문 결과 기록",
    "scheduled_at": "예정 시각",
    "change_reason": "변경 사유",
    "visit_note": "방문 메모",
    "campaign": "안심콜",
}

# word people must not see -> the glossary word to use instead (why, when it is not obvious).
AVOID = {
    "정한 시각": "예정 시각",
    "옮긴 까닭": "변경 사유",
    "팀이 본 것": "방문 메모",
    "보낼 편지함": "발송 폴더",
    "막기": "사용 중지",
    "회신함": "회신 결과 저장 (회신함 reads as an inbox)",
    "긴급출동": "119 인계",
    "미기록": "결과 대기 (또는 '기록 기한 초과')",
    "암호 재설정": "비밀번호 재설정",
    "비밀번호 초기화": "비밀번호 재설정",
    "받았으나 무응답": "받았으나 버튼 안 누름",
    "통화안전": "통화함: 안전 확인",
    "도움요청": "도움 요청",
    "연결실패": "연결 실패",
    "늦은응답": "늦게 1번 응답(자동 종료)",
}

# "안전" alone names the outcome 안전 확인 only in these forms (안전 확인, 안심콜's 안전 여부 stays a plain word).
SAFE_WORD = "안전 확인"

# Latin words allowed in Korean text: product and protocol names, units, file kinds, keywords typed at the prompt.
LATIN_ALLOWED = frozenset(
    {
        "SafeCall",
        "safecall",
        "Asterisk",
        "AMI",
        "FastAGI",
        "AGI",
        "Twilio",
        "SOLAPI",
        "SMS",
        "SMTP",
        "TLS",
        "HTTP",
        "HTTPS",
        "URL",
        "IVR",
        "PBX",
        "SIP",
        "PostgreSQL",
        "SQLite",
        "Excel",
        "CSV",
        "XLSX",
        "XLS",
        "JSON",
        "PNG",
        "TOML",
        "UTF",
        "CP949",
        "EUC",
        "KR",
        "ID",
        "PIN",
        "OK",
        "MiB",
        "KB",
        "MB",
        "GB",
        "ms",
        "Ctrl",
        "SIGTERM",
        "systemd",
        "csv",
        "xlsx",
        "json",
        "png",
        "toml",
        "xls",
        "conf",
        "wav",
        "WAV",
        "MP3",
        "sln16",
        "LMS",
        "SID",
        "ISO",
        "YYYY-MM-DD",
        "https",
        "Ping",
        "U",
        "A1",
        "T08",
        "T10",
        "UTF-8",
        "UTF-16",
        "EUC-KR",
        "Ctrl-C",
        "YYYY-MM",
        "EHLO",
        "STARTTLS",
        "API",
        "Debian",
        "a-z",
        "p95",
        # systemd's own directive names, and docs/operations.md's section titles that messages point to
        "EnvironmentFile",
        "LoadCredential",
        "Rolling",
        "back",
        "Secrets",
    }
)
# Latin words people type as they are: settings keys and sections, tools' commands, the examples' forms
# (web:kim, os:root(uid 0), 'task 12'), and placeholders such as DIR.
LATIN_TYPED = frozenset(
    {
        "provider",
        "solapi",
        "twilio",
        "sms",
        "notify",
        "trunks",
        "host",
        "port",
        "name",
        "attachments",
        "env",
        "file",
        "web",
        "email",
        "gateway",
        "holidays",
        "sox",
        "espeak-ng",
        "chmod",
        "export",
        "include",
        "extensions",
        "fonts-nanum",
        "DIR",
        "kim",
        "os",
        "root",
        "uid",
        "task",
        "person",
        "manager",
        "folder",
        "security",
        "apt-get",
        "install",
        "postgresql-client",
        "openssl",
        "rand",
        "enabled",
        "regions",
    }
)
