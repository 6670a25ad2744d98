"""Redaction: registered values and secret-shaped text are masked; useful identifiers survive."""

from __future__ import annotations

import pytest

from agent.shared.redact import MASK, SecretRegistry, redact, truncate


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://app:hunter2hunter@db:5432/x", "hunter2hunter"),
        ("host=db user=app password=s3cr3t-value dbname=x", "s3cr3t-value"),
        ('{"username": "app", "password": "pa ss word"}', "pa ss word"),
        ('{"SecretString": "{\\"password\\": 1}"}', 'password\\": 1'),
        ("db:5432/?Action=connect&DBUser=app&X-Amz-Signature=abcdef0123", "abcdef0123"),
        ("X-Amz-Security-Token=IQoJb3JpZ2luX2VjEHYaCXVz&X-Amz-Date=1", "IQoJb3JpZ2luX2VjEHYaCXVz"),
        ("Authorization: Bearer tok-123456", "tok-123456"),
        ("key AKIAIOSFODNN7EXAMPLE was used", "AKIAIOSFODNN7EXAMPLE"),
    ],
)
def test_secret_shapes_are_masked(text: str, secret: str) -> None:
    assert secret not in redact(text, SecretRegistry())
    assert MASK in redact(text, SecretRegistry())


def test_registered_values_are_masked_in_any_text_and_encoding() -> None:
    registry = SecretRegistry()
    registry.add("c0rrect horse&battery")
    text = "said c0rrect horse&battery, c0rrect%20horse%26battery and c0rrect horse&amp;battery"
    assert redact(text, registry).count(MASK) == 3


def test_arns_and_prose_survive() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
    text = f"grant secretsmanager:GetSecretValue on {arn}; then run aws rds generate-db-auth-token --hostname h"
    assert redact(text, SecretRegistry()) == text


def test_mysql_using_password_yes_or_no_survives() -> None:
    """The incident's own log line: whether a password was sent is the diagnosis."""
    for text in ("Access denied for user 'app'@'10.0.0.5' (using password: YES)", "(using password: NO) ok"):
        assert redact(text, SecretRegistry()) == text
    assert "YESterday" not in redact("password: YESterday1", SecretRegistry())


def test_short_values_are_not_registered() -> None:
    registry = SecretRegistry()
    registry.add("abc")
    assert registry.scrub("abc abc") == "abc abc"


def test_truncate_after_redact_cannot_leave_half_a_secret() -> None:
    registry = SecretRegistry()
    registry.add("0123456789abcdef")
    assert "0123" not in truncate(redact("x" * 20 + "0123456789abcdef", registry), limit=26)


def test_overlapping_values_are_masked_whole_and_masks_are_not_rescrubbed() -> None:
    registry = SecretRegistry()
    for value in ("abcd", "xxabcdyy", "REDA", "CTED"):  # the last two are inside the mask's own text
        registry.add(value)
    assert registry.scrub("1 xxabcdyy 2 abcd 3") == f"1 {MASK} 2 {MASK} 3"
    # Side by side, two values make one mask; its own letters are never scrubbed again.
    assert registry.scrub("REDACTED") == MASK


def test_the_registry_is_bounded_and_the_oldest_unused_value_ages_out_first() -> None:
    registry = SecretRegistry(max_values=2)  # plain values: each encoding is the value itself
    registry.add("password-in-use")
    registry.add("token-0001")
    registry.add("password-in-use")  # used again (a login): young again
    registry.add("token-0002")  # token-0001 is now the oldest: out
    assert len(registry) == 2
    assert registry.scrub("password-in-use token-0002 token-0001") == f"{MASK} {MASK} token-0001"


def test_a_day_of_iam_tokens_stays_small_and_fast() -> None:
    """144 tokens a day (one every 600 s) of ~1.2 kB each: adding and scrubbing stay in microseconds, not seconds."""
    import secrets
    import time

    registry = SecretRegistry()
    started = time.perf_counter()
    tokens = [f"db.example:5432/?Action=connect&X-Amz-Signature={secrets.token_hex(600)}" for _ in range(144)]
    for token in tokens:
        registry.add(token)
    added = time.perf_counter() - started
    assert len(registry) == SecretRegistry.MAX_VALUES
    line = f"login failed with {tokens[-1]} after {tokens[0][:40]}"
    started = time.perf_counter()
    for _ in range(100):
        scrubbed = registry.scrub(line)
    scrubbing = (time.perf_counter() - started) / 100
    assert tokens[-1] not in scrubbed
    assert added < 1.0 and scrubbing < 0.005, f"add x144 {added:.3f}s, scrub {scrubbing * 1000:.2f} ms"
