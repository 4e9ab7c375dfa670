"""A vLLM server that died is started again in eager mode unless the operator says otherwise."""

from rag_platform.process.vllm_server import restart_eager


def test_restart_is_eager_by_default_and_can_be_turned_off():
    assert restart_eager({}) is True
    assert restart_eager({"RAG_VLLM_RESTART_EAGER": "0"}) is False
    assert restart_eager({"RAG_VLLM_RESTART_EAGER": "yes"}) is True
