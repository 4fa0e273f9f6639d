"""Standard Webhooks signing: the published test vector, secrets, verification and its refusals."""

from __future__ import annotations

import base64

import pytest

from vidmorph.callbacks import signing

# The Standard Webhooks reference test vector (the spec's libraries all assert it).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP_S = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    assert signing.sign(SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP_S, SPEC_BODY) == SPEC_SIGNATURE


def test_secret_without_its_prefix_signs_the_same() -> None:
    bare = SPEC_SECRET.removeprefix("whsec_")
    assert signing.sign(bare, SPEC_MSG_ID, SPEC_TIMESTAMP_S, SPEC_BODY) == SPEC_SIGNATURE


def test_new_secret_is_whsec_base64_of_enough_random_bytes() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) <= 32
    assert signing.new_secret() != secret


def test_verify_accepts_the_spec_vector_at_its_own_time() -> None:
    assert signing.verify(
        SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP_S, SPEC_BODY, SPEC_SIGNATURE,
        now_s=SPEC_TIMESTAMP_S + 10,
    )  # fmt: skip


def test_verify_rejects_a_tampered_body() -> None:
    assert not signing.verify(
        SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP_S, b'{"test": 2432232315}', SPEC_SIGNATURE,
        now_s=SPEC_TIMESTAMP_S,
    )  # fmt: skip


def test_verify_rejects_another_message_id_or_secret() -> None:
    now_s = SPEC_TIMESTAMP_S
    assert not signing.verify(
        SPEC_SECRET, "msg_other", SPEC_TIMESTAMP_S, SPEC_BODY, SPEC_SIGNATURE, now_s=now_s
    )
    assert not signing.verify(
        signing.new_secret(), SPEC_MSG_ID, SPEC_TIMESTAMP_S, SPEC_BODY, SPEC_SIGNATURE, now_s=now_s
    )


@pytest.mark.parametrize("skew_s", [-301, 301, 86_400])
def test_verify_rejects_a_timestamp_outside_the_tolerance(skew_s: int) -> None:
    assert not signing.verify(
        SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP_S, SPEC_BODY, SPEC_SIGNATURE,
        now_s=SPEC_TIMESTAMP_S + skew_s,
    )  # fmt: skip


def test_verify_finds_the_valid_one_among_several_signatures() -> None:
    header = f"v1,bm9wZQ== v2,whatever {SPEC_SIGNATURE}"
    assert signing.verify(
        SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP_S, SPEC_BODY, header, now_s=SPEC_TIMESTAMP_S
    )


@pytest.mark.parametrize("header", ["", "v1,", "garbage", "v2," + SPEC_SIGNATURE[3:]])
def test_verify_rejects_malformed_or_foreign_signature_headers(header: str) -> None:
    assert not signing.verify(
        SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP_S, SPEC_BODY, header, now_s=SPEC_TIMESTAMP_S
    )


def test_headers_carry_id_timestamp_signature_and_json_content_type() -> None:
    headers = signing.headers(SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP_S, SPEC_BODY)
    assert headers == {
        "webhook-id": SPEC_MSG_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP_S),
        "webhook-signature": SPEC_SIGNATURE,
        "content-type": "application/json",
    }


def test_a_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        signing.sign("whsec_not base64!", SPEC_MSG_ID, SPEC_TIMESTAMP_S, SPEC_BODY)
