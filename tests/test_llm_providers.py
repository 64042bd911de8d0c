"""The real anthropic / openai clients against the local wire-protocol server.

Nothing is monkeypatched: the clients are pointed at 127.0.0.1 by ``base_url``,
their own retries are off (``max_retries=0``) and every fault surfaces as the
error class our retry layer acts on.
"""

from __future__ import annotations

import pytest

from opinbench.errors import ConfigError
from opinbench.llm.errors import AuthError, LLMError, RequestError
from opinbench.llm.providers import ChatRequest, ProviderSpec, make_provider, redact
from tests.fake_api_server import FakeAPIServer
from tests.test_judging_fixtures import SECRET
from tests.helpers.api_keys import keys  # noqa: F401 - autouse: fake keys, no base-URL override

REQ = ChatRequest(
    messages=(("user", "Which? A or B"),), system="Be brief.", max_tokens=16, temperature=0.0
)


@pytest.fixture()
def server():
    with FakeAPIServer(SECRET, retry_after="7") as srv:
        yield srv


def _providers(srv, timeout=2.0):  # the "slow" fault waits it out; a loaded machine answers well within
    return {
        "anthropic": make_provider(
            ProviderSpec.parse("anthropic:claude-sonnet-4-6", base_url=srv.url, timeout=timeout)
        ),
        "openai": make_provider(
            ProviderSpec.parse("openai:gpt-4o-mini", base_url=srv.openai_url, timeout=timeout)
        ),
        "compat": make_provider(
            ProviderSpec.parse(
                "vllm:some/model",
                base_url=srv.openai_url,
                timeout=timeout,
                api_key_env="OPENAI_API_KEY",
            )
        ),
    }


def test_request_shapes(server):
    p = _providers(server)
    assert p["anthropic"].chat(REQ) == "Answer: A"
    assert p["openai"].chat(REQ) == "Answer: A"
    assert p["compat"].chat(REQ) == "Answer: A"
    (path_a, body_a, _), (path_o, body_o, _), (_, body_c, _) = server.requests
    assert path_a == "/v1/messages" and path_o == "/v1/chat/completions"
    # Anthropic API 2026-10-21 rejects sampling parameters: none is sent.
    assert (
        # The fixed instructions are marked for Anthropic's prompt cache.
        body_a["system"]
        == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
        and body_a["max_tokens"] == 16
        and "temperature" not in body_a
    )
    assert body_o["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body_o["temperature"] == 0 and body_o["max_completion_tokens"] == 16
    assert body_c["max_tokens"] == 16  # what vLLM-style servers understand


def test_moderation_endpoint(server):
    p = _providers(server)["openai"]
    out = p.moderate("I will kill the gore")
    assert out["flagged"] is True
    assert out["categories"]["violence"] and out["categories"]["violence/graphic"]
    assert not out["categories"]["hate"] and "self-harm/intent" in out["categories"]
    assert server.requests[-1][0] == "/v1/moderations"


@pytest.mark.parametrize(
    "fault, kind, retryable",
    [
        ("429", "http 429", True),
        ("500", "http 500", True),
        ("503", "http 503", True),
        ("529", "http 529", True),
        ("400", "http 400", False),
        ("malformed", "malformed", True),
        ("slow", "timeout", True),
        ("drop", "connection", True),
    ],
)
@pytest.mark.parametrize("which", ["anthropic", "openai"])
def test_faults_map_to_request_errors(server, fault, kind, retryable, which):
    p = _providers(server)[which]
    server.faults.append(fault)
    with pytest.raises(RequestError) as info:
        p.chat(REQ)
    assert info.value.kind == kind and info.value.retryable is retryable
    if fault == "429":
        assert info.value.retry_after == 7.0
    assert SECRET not in str(info.value)
    assert p.chat(REQ) == "Answer: A"  # the next request goes through


@pytest.mark.parametrize("which", ["anthropic", "openai"])
def test_the_clients_do_not_retry_on_their_own(server, which):
    # Our runner is the one retry layer (budget, Retry-After across workers, counts):
    # a 500 must reach it after exactly one HTTP request, not after the SDK's retries.
    p = _providers(server)[which]
    server.faults.append("500")
    with pytest.raises(RequestError):
        p.chat(REQ)
    assert server.count() == 1 and p._client.max_retries == 0


def test_unknown_model_stops_the_run(server):
    p = _providers(server)["anthropic"]
    server.faults.append("404")
    with pytest.raises(LLMError, match="HTTP 404") as info:
        p.chat(REQ)
    assert not isinstance(info.value, RequestError)  # fatal, not retried item by item


def test_rejected_key_is_an_auth_error_without_the_key(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-wrong-key-123456")
    p = make_provider(ProviderSpec.parse("anthropic:claude-sonnet-4-6", base_url=server.url))
    with pytest.raises(AuthError, match=r"\$ANTHROPIC_API_KEY was rejected \(HTTP 401") as info:
        p.chat(REQ)
    assert "sk-wrong-key-123456" not in str(info.value)


def test_missing_key_names_the_variable(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    p = make_provider(ProviderSpec.parse("openai:gpt-4o-mini", base_url=server.openai_url))
    with pytest.raises(AuthError, match=r"no API key: set \$OPENAI_API_KEY"):
        p.chat(REQ)
    monkeypatch.setenv("MY_JUDGE_KEY", SECRET)
    p = make_provider(
        ProviderSpec.parse(
            "openai:gpt-4o-mini", base_url=server.openai_url, api_key_env="MY_JUDGE_KEY"
        )
    )
    assert p.chat(REQ) == "Answer: A"


def test_compat_server_without_key(server, monkeypatch):
    server.api_key = None  # a vLLM server started without --api-key
    p = make_provider(ProviderSpec.parse("openai-compat:m", base_url=server.openai_url))
    assert p.chat(REQ) == "Answer: A"


def test_spec_parsing_and_identity(monkeypatch):
    with pytest.raises(ConfigError, match="PROVIDER:MODEL"):
        ProviderSpec.parse("claude")
    with pytest.raises(ConfigError, match="--base-url"):
        ProviderSpec.parse("openai-compat:m")
    with pytest.raises(ConfigError, match="does not apply"):
        ProviderSpec.parse("local:smollm2", base_url="http://x")
    spec = ProviderSpec.parse("vllm:m", base_url="http://user:pw@host:8000/v1")
    assert spec.identity() == {
        "provider": "openai-compat",
        "model": "m",
        "base_url": "http://host:8000/v1",
    }
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://proxy:1")
    assert ProviderSpec.parse("anthropic:c").identity()["base_url"] == "http://proxy:1"
    assert redact("key sk-abc123 here", "sk-abc123") == "key *** here"
