"""Ollama Modelfiles: the TEMPLATE translated from each chat-template family renders conversations
exactly as the tokenizer's own template does, under Ollama's rules (SYSTEM becomes the first
message; a last assistant message is continued), and the Go-template subset is evaluated as Go does.

The family templates below are written here in each family's documented prompt format.
"""

from __future__ import annotations

import pytest

from tuitune.core import go_template, ollama
from tuitune.core.data.templates import TEMPLATES
from tuitune.core.errors import UserError
from tuitune.core.served_template import served_template

FAMILIES = {
    "chatml": (TEMPLATES["chatml"], {}, ["<|im_start|>", "<|im_end|>"], "<|im_end|>"),
    "qwen": (
        "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are Qwen, a helpful assistant.<|im_end|>\\n' }}{% endif %}"
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        {},
        ["<|im_start|>", "<|im_end|>"],
        "<|im_end|>",
    ),
    "llama-3": (
        "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
        " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        {"bos_token": "<|begin_of_text|>"},
        ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        "<|eot_id|>",
    ),
    "mistral": (
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
        "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
        {"bos_token": "<s>", "eos_token": "</s>"},
        [],
        "</s>",
    ),
    "gemma": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\\n\\n' %}"
        "{% set turns = messages[1:] %}{% else %}{% set first = '' %}{% set turns = messages %}{% endif %}"
        "{% for message in turns %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
        "{{ '<start_of_turn>' + role + '\\n' + (first if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}",
        {"bos_token": "<bos>"},
        ["<start_of_turn>", "<end_of_turn>"],
        "<end_of_turn>",
    ),
    "phi-3": (
        "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
        {},
        ["<|user|>", "<|assistant|>", "<|system|>", "<|end|>"],
        "<|end|>",
    ),
}
# tuitune's own fallback templates (data.template), on the test tokenizer (eos <|im_end|>).
for _name in ("llama3", "alpaca", "zephyr", "plain"):
    FAMILIES[f"tuitune-{_name}"] = ("", {}, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], None)

CONVERSATIONS = [
    [{"role": "user", "content": "Who are you?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a colour.\nOne word."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi."},
     {"role": "user", "content": "Bye"}],
]


@pytest.fixture(scope="module")
def base_tokenizer():
    from tiny_model import build_tokenizer

    return build_tokenizer()


def _family_tokenizer(base, family: str):
    import copy

    jinja, specials, added, _ = FAMILIES[family]
    tok = copy.deepcopy(base)
    if added:
        tok.add_special_tokens({"additional_special_tokens": added})
    if specials:
        tok.add_special_tokens(specials)
    template = family.removeprefix("tuitune-") if family.startswith("tuitune-") else "auto"
    if jinja:
        tok.chat_template = jinja
    return tok, template


def _modelfile_render(plan, messages):
    """Render through the TEMPLATE exactly as written in the Modelfile (parsed back from its text)."""
    parsed = ollama.parse_modelfile(ollama.modelfile_text("m.gguf", plan))
    return go_template.render(parsed["TEMPLATE"], ollama.ollama_values(messages, parsed.get("SYSTEM", "")))


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("system", ["", "You are Tally."])
def test_modelfile_template_renders_like_the_chat_template(base_tokenizer, family, system):
    tok, template = _family_tokenizer(base_tokenizer, family)
    if family == "mistral" and system:
        # The template refuses system messages, so training with data.system fails the same way.
        with pytest.raises(UserError, match="cannot be translated"):
            ollama.check_translation(tok, served_template(tok, template, system))
        return
    served = served_template(tok, template, system)
    plan = ollama.check_translation(tok, served)
    for convo in CONVERSATIONS:
        if family == "mistral" and convo[0]["role"] == "system":
            continue
        expected = tok.apply_chat_template(convo, chat_template=served.jinja, tokenize=False, add_generation_prompt=True)
        bos = tok.bos_token if plan.bos_from_gguf else ""
        assert bos + _modelfile_render(plan, convo) == expected, family
    expected_stop = FAMILIES[family][3]
    if expected_stop:
        assert plan.stops[0] == expected_stop
    assert plan.system == system


def test_modelfile_text_has_from_template_system_stops_and_sampling(base_tokenizer):
    served = served_template(base_tokenizer, "auto", 'Say "hi".')
    plan = ollama.check_translation(base_tokenizer, served)
    text = ollama.modelfile_text("tally-q8_0.gguf", plan)
    parsed = ollama.parse_modelfile(text)
    assert parsed["FROM"] == "./tally-q8_0.gguf"
    assert parsed["SYSTEM"] == 'Say "hi".'
    assert ("stop", "<|im_end|>") in parsed["parameters"]
    assert ("temperature", "0.7") in parsed["parameters"] and ("top_p", "0.9") in parsed["parameters"]
    # Ollama continues a last assistant message: no end-of-turn after it, no new turn.
    convo = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}]
    assert _modelfile_render(plan, convo).endswith("<|im_start|>assistant\nHel")


def test_llama3_bos_is_left_to_llama_cpp_when_the_tokenizer_adds_it(base_tokenizer):
    tok, _ = _family_tokenizer(base_tokenizer, "llama-3")
    from tokenizers import processors

    bos_id = tok.convert_tokens_to_ids("<|begin_of_text|>")
    tok._tokenizer.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos_id)])
    plan = ollama.check_translation(tok, served_template(tok))
    assert plan.bos_from_gguf and "<|begin_of_text|>" not in plan.template


def test_a_template_that_does_not_repeat_is_refused(base_tokenizer):
    import copy

    tok = copy.deepcopy(base_tokenizer)
    # Numbers each turn: no fixed text between messages, so no Go template can reproduce it.
    tok.chat_template = "{% for m in messages %}{{ loop.index|string + ': ' + m['content'] + '\\n' }}{% endfor %}"
    with pytest.raises(UserError, match="prompt differently"):
        ollama.check_translation(tok, served_template(tok))


# ------------------------------------------------------------------------------ the Go-template subset


def test_go_template_trim_markers_and_ranges_as_go_does():
    tpl = "{{- range $i, $m := .Messages }}\n  {{- if eq $m.Role \"user\" }}U{{ $i }}: {{ .Content }}\n{{ else }}A: {{ .Content }}\n{{ end }}\n{{- end }}"
    data = {"Messages": [{"Role": "user", "Content": "a"}, {"Role": "assistant", "Content": "b"}]}
    assert go_template.render(tpl, data) == "U0: a\nA: b\n"


def test_go_template_last_message_idiom_and_functions():
    tpl = (
        "{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
        "{{ .Content }}{{ if not $last }}|{{ end }}{{ end }}"
        "{{ if and .System (ne .System \"x\") }} sys={{ .System }}{{ else if .System }} x{{ else }} none{{ end }}"
    )
    msgs = [{"Content": "a"}, {"Content": "b"}, {"Content": "c"}]
    assert go_template.render(tpl, {"Messages": msgs, "System": "s"}) == "a|b|c sys=s"
    assert go_template.render(tpl, {"Messages": msgs, "System": "x"}) == "a|b|c x"
    assert go_template.render(tpl, {"Messages": msgs, "System": ""}) == "a|b|c none"


def test_go_template_assignment_reaches_the_declaring_scope():
    tpl = '{{ $prev := "" }}{{ range .Items }}{{ if $prev }}<{{ $prev }}>{{ end }}{{ $prev = . }}{{ end }}last={{ $prev }}'
    assert go_template.render(tpl, {"Items": ["a", "b", "c"]}) == "<a><b>last=c"


@pytest.mark.parametrize("bad", ["{{ if .X }}open", "{{ end }}", "{{ with .X }}{{ end }}", "{{ printf \"%s\" .X }}", "{{ $y }}"])
def test_go_template_refuses_what_it_does_not_implement(bad):
    with pytest.raises(go_template.TemplateError):
        go_template.render(bad, {"X": "x"})
