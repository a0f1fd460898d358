"""The pure pieces of sinks.http, without network or processes: the rate budget (on a fake clock), retry
delays and Retry-After, the limits on retrying, and redaction."""

import asyncio
import base64
import time

import httpx
import pytest

from sinks.http import RateLimiter, RetriesExhausted, watch_ambiguity
from sinks.http.ambiguity import note_ambiguous
from sinks.http.redaction import REDACT, Redactor, excerpt
from sinks.http.retries import Attempts, backoff_delay, read_retry_after


class Clock:
    """Wall-clock seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_tokens(limiter: RateLimiter) -> int:
    """How many tokens can be taken right now without waiting."""
    taken = 0
    while limiter.take() == 0:
        taken += 1
    return taken


# ------------------------------------------------------------------------------------------------ rate budget
def test_a_full_bucket_gives_its_burst_then_asks_to_wait_for_one_token():
    limiter = RateLimiter(100.0, burst=5, clock=Clock())
    assert [limiter.take() for _ in range(5)] == [0, 0, 0, 0, 0]
    assert limiter.take() == pytest.approx(1 / 100)


def test_the_burst_is_a_tenth_of_a_second_of_rate_and_at_least_one_token():
    assert free_tokens(RateLimiter(100.0, clock=Clock())) == 10
    slow = RateLimiter(2.0, clock=Clock())
    assert free_tokens(slow) == 1
    assert slow.take() == pytest.approx(0.5)


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst():
    clock = Clock()
    limiter = RateLimiter(100.0, burst=5, clock=clock)
    free_tokens(limiter)
    clock.advance(0.0301)
    assert free_tokens(limiter) == 3
    clock.advance(30.0)
    assert free_tokens(limiter) == 5


def test_the_wait_asked_for_is_what_the_missing_part_of_a_token_takes():
    clock = Clock()
    limiter = RateLimiter(10.0, burst=1, clock=clock)
    free_tokens(limiter)
    clock.advance(0.04)
    assert limiter.take() == pytest.approx(0.06)
    clock.advance(0.0601)
    assert limiter.take() == 0


def test_a_clock_gone_back_does_not_stall_the_bucket():
    clock = Clock()
    limiter = RateLimiter(100.0, burst=5, clock=clock)
    free_tokens(limiter)
    clock.advance(-3600.0)
    assert limiter.take() == pytest.approx(1 / 100)


def test_a_429_halves_the_rate_and_pauses_every_taker_for_its_retry_after():
    clock = Clock()
    limiter = RateLimiter(100.0, clock=clock)
    limiter.throttled(2.0)
    assert limiter.rate == 50.0
    assert limiter.take() == pytest.approx(2.0)
    clock.advance(1.5)
    assert limiter.take() == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.take() == 0


def test_a_429_without_retry_after_empties_the_bucket_without_a_pause():
    clock = Clock()
    limiter = RateLimiter(100.0, clock=clock)
    limiter.throttled(None)
    assert limiter.take() == pytest.approx(1 / 50)


def test_a_retry_after_pause_is_capped_at_ten_minutes():
    limiter = RateLimiter(100.0, clock=Clock())
    limiter.throttled(86_400.0)
    assert limiter.take() == pytest.approx(600.0)


def test_the_rate_climbs_back_a_tenth_a_second_to_its_ceiling():
    clock = Clock()
    limiter = RateLimiter(100.0, clock=clock)
    limiter.throttled(None)
    rates = []
    for _ in range(9):
        clock.advance(1.0)
        limiter.take()
        rates.append(round(limiter.rate, 2))
    assert rates[:3] == [55.0, 60.5, 66.55]
    assert rates[-1] == 100.0 and rates == sorted(rates)


def test_repeated_429s_floor_the_rate_at_a_fiftieth_of_the_ceiling():
    limiter = RateLimiter(100.0, clock=Clock())
    for _ in range(20):
        limiter.throttled(None)
    assert limiter.rate == 2.0


def test_a_budget_left_idle_for_a_minute_is_back_at_its_ceiling():
    clock = Clock()
    limiter = RateLimiter(100.0, clock=clock)
    limiter.throttled(None)
    clock.advance(60.0)
    limiter.take()
    assert limiter.rate == 100.0


def test_limiters_on_one_file_draw_on_one_bucket(tmp_path):
    clock = Clock()
    one, other = (RateLimiter(100.0, burst=3, path=tmp_path / "x.bucket", clock=clock) for _ in range(2))
    assert [one.take(), one.take(), other.take()] == [0, 0, 0]
    assert other.take() > 0 and one.take() > 0
    other.throttled(None)
    assert one.rate == 50.0


def test_acquire_returns_at_once_with_a_token_and_sleeps_out_the_wait_without_one():
    limiter = RateLimiter(25.0, burst=1)

    async def two() -> tuple[float, float]:
        started = time.perf_counter()
        await limiter.acquire()
        first = time.perf_counter()
        await limiter.acquire()
        return first - started, time.perf_counter() - first

    first, second = asyncio.run(two())
    assert first < 0.02
    assert 0.035 < second < 1.0  # the token missing at 25 per second: 0.04 s


# -------------------------------------------------------------------------------------- retry delays and limits
def test_retry_after_is_the_delay_up_to_the_cap():
    assert backoff_delay(3, 2.5, base_s=0.25, cap_s=30.0) == 2.5
    assert backoff_delay(0, 0.0, base_s=0.25, cap_s=30.0) == 0.0
    assert backoff_delay(0, 3600.0, base_s=0.25, cap_s=30.0) == 30.0


def test_without_retry_after_the_delay_is_full_jitter_under_a_doubling_bound():
    for attempt, bound in [(0, 0.25), (1, 0.5), (3, 2.0)]:
        delays = [backoff_delay(attempt, None, base_s=0.25, cap_s=30.0) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert min(delays) < bound / 4 and max(delays) > bound * 3 / 4  # spread over the whole range


def test_the_backoff_bound_stops_at_the_cap():
    delays = [backoff_delay(40, None, base_s=0.25, cap_s=30.0) for _ in range(200)]
    assert all(0 <= d <= 30.0 for d in delays) and max(delays) > 20.0


def response(**headers: str) -> httpx.Response:
    return httpx.Response(429, headers=headers)


@pytest.mark.parametrize("headers, seconds", [
    ({"Retry-After": "3"}, 3.0),
    ({"Retry-After": "1.5"}, 1.5),
    ({"Retry-After": "-4"}, 0.0),
    ({"X-Rate-Limit-Reset": "7"}, 7.0),
    ({"Retry-After": "2", "X-Rate-Limit-Reset": "7"}, 2.0),
    ({}, None),
    ({"Retry-After": ""}, None),
    ({"Retry-After": "soon"}, None),
])
def test_retry_after_is_read_in_seconds(headers, seconds):
    assert read_retry_after(response(**headers)) == seconds


def test_an_http_date_retry_after_is_not_read_so_backoff_decides_the_wait():
    assert read_retry_after(response(**{"Retry-After": "Wed, 21 Oct 2037 07:28:00 GMT"})) is None


def test_failures_are_retried_up_to_the_limit_and_the_last_error_says_how_often_it_came():
    attempts = Attempts("POST /v1/things", max_failures=4, max_throttle_wait_s=600.0)
    attempts.failed("retryable answer", "HTTP 500: 'boom'")
    assert attempts.retrying
    for _ in range(2):
        attempts.failed("retryable answer", "HTTP 503: 'busy'")
    with pytest.raises(RetriesExhausted) as raised:
        attempts.failed("retryable answer", "HTTP 503: 'busy'")
    assert str(raised.value) == "POST /v1/things failed 4 times; last: HTTP 503: 'busy' (3 times in a row)"


def test_being_throttled_is_no_failure_until_the_waits_add_up_past_their_limit():
    attempts = Attempts("GET /v1/things", max_failures=2, max_throttle_wait_s=10.0)
    for _ in range(5):
        attempts.throttled(2.0)
    assert attempts.failures == 0
    with pytest.raises(RetriesExhausted, match=r"GET /v1/things still throttled \(HTTP 429\) after waiting 11s"):
        attempts.throttled(1.0)


def test_only_writes_that_met_an_ambiguous_answer_are_watched():
    with watch_ambiguity() as seen:
        note_ambiguous("GET", "GET /v1/things")
        note_ambiguous("POST", "POST /v1/things")
    note_ambiguous("PUT", "PUT /v1/unwatched")
    assert seen == ["POST /v1/things"]


# ------------------------------------------------------------------------------------------------- redaction
def test_a_registered_secret_and_its_basic_auth_encodings_are_removed():
    redact = Redactor()
    redact.add("k3y-S3CRET-value")
    basic = base64.b64encode(b"k3y-S3CRET-value:").decode().rstrip("=")
    as_password = base64.b64encode(b":k3y-S3CRET-value").decode().rstrip("=")
    out = redact(f"key k3y-S3CRET-value, basic {basic}, password {as_password}")
    assert out == "key ***, basic ***, password ***"


def test_a_longer_secret_is_removed_whole_even_when_a_shorter_one_is_part_of_it():
    redact = Redactor()
    redact.add("abcd", "abcdefgh-longer")
    assert redact("token abcdefgh-longer") == "token ***"


def test_secrets_too_short_to_be_told_from_words_are_not_registered():
    redact = Redactor()
    redact.add("abc", None, "")
    assert redact("abc def") == "abc def"


@pytest.mark.parametrize("message", [
    "Authorization: Bearer eyJhbGciOi.payload.sig",
    "{'authorization': 'Bearer eyJhbGciOi.payload.sig'}",
    '{"Authorization": "Basic dXNlcjpwYXNz"}',
    "authorization=eyJhbGciOi.payload.sig",
])
def test_an_authorization_value_is_removed_even_when_its_secret_was_never_registered(message):
    out = Redactor()(message)
    assert "eyJhbGciOi" not in out and "dXNlcjpwYXNz" not in out and "***" in out


def test_an_excerpt_is_cut_at_its_limit_after_redaction():
    redact = Redactor()
    redact.add("SECRET-0123456789")
    assert redact.excerpt("short", 10) == "short"
    assert redact.excerpt("x" * 25, 10) == "x" * 10 + "..."
    assert redact.excerpt("x" * 6 + "SECRET-0123456789", 8) == "xxxxxx**..."


def test_a_body_excerpt_is_one_short_redacted_line_and_html_is_reduced_to_its_text():
    REDACT.add("body-SECRET-4242")
    page = ("<html><head><style>p {color: red}</style><script>var k = 1;</script></head>"
            "<body><h1>Bad   gateway</h1>\n<p>key body-SECRET-4242 &amp; more</p></body></html>")
    out = excerpt(httpx.Response(502, text=page, headers={"content-type": "text/html"}))
    assert out == repr("Bad gateway key *** & more")
    assert len(excerpt(httpx.Response(500, text="y" * 1000), limit=50)) == len(repr("y" * 50 + "..."))
    assert excerpt(httpx.Response(500, text="")) == "(empty body)"
