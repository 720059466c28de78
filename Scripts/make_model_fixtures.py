#!/usr/bin/env python3
"""Writes the fixtures that LopperModels' tests read.

Everything is built offline (no hub downloads). Run from the repository root:
    python3 Scripts/make_model_fixtures.py
Tests never need Python: they read the files written here.

Parts (one function each, called from main()):
  make_tokenizer_fixtures(out_dir)  small tokenizers trained with the Hugging Face
      `tokenizers` library, each as NAME/tokenizer.json plus NAME/expected.json
      holding, for a few hundred varied strings, the ids HF produces with and
      without special tokens, truncated to 8, and HF's decode. The byte-level BPE
      fixtures come out the same on every run; WordPieceTrainer breaks frequency ties
      in hash-map order, so the BERT vocabularies (and their ids) change a little on
      each run; tests only depend on the special tokens' ids and the vocabulary size.
  make_model_fixtures(out_dir): tiny Llama / Qwen2 / BERT / RoBERTa models in
  out_dir/NAME/model/ (config.json, model.safetensors), and beside that folder
    inputs.json           {"inputs": [[ids...], ...]}   sequences of lengths 1, 5 and 17
    expected.safetensors  hidden.I [len, hidden]  last hidden state (decoders: after the final norm)
                          logits.I [len, vocab]   decoders
                          logits.I [num_labels]   sequence classifiers
                          pooled.I [hidden]       encoders with a pooler
  Each sequence is run on its own (batch of one), in F32, eager attention.
"""
import json
import sys
import shutil
import os
import random

# ---------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

TOKENIZER_CORPUS = """\
Delta parameter pruning removes most of the difference between a fine-tuned model and its base.
DARE drops entries at random and rescales the rest by one over the keep rate.
The quick brown fox jumps over the lazy dog. Don't panic; it's only a test, isn't it?
I'M SURE WE'LL SEE THEM AGAIN, THEY'VE SAID SO, AND YOU'D AGREE.
Numbers: 0 1 2 3 12 123 1234 12345 3.14159 2026-11-23 1,000,000 $42.50 99%.
Café, naïve, résumé, façade, jalapeño, Ångström, Zürich, São Paulo, Kraków, Ελληνικά.
Привет мир! Как дела? Это небольшой корпус для обучения токенизатора.
東京は日本の首都です。中文分词测试，你好世界！한국어 문장도 있습니다.
مرحبا بالعالم، هذا نص عربي قصير. שלום עולם.
Emoji are fun 😀🚀🎉 and so are flags 🇫🇷 and families 👨‍👩‍👧.
def encode(text): return [vocab[t] for t in text.split()]  # code, too
    indented lines\tand\ttabs
multiple   spaces    between     words
The model's weights, the tokenizer's vocabulary and the optimizer's state were saved.
Researchers load a pre-trained checkpoint and a fine-tuned one, then prune the delta.
Magnitude pruning keeps the largest entries; WANDA weighs them by input norms.
unbelievably, internationalization, counterrevolutionaries, antidisestablishmentarianism
"""


def _tokenizer_corpus():
    lines = [l for l in TOKENIZER_CORPUS.splitlines() if l.strip()]
    rng = random.Random(7)
    out = list(lines)
    words = " ".join(lines).split()
    for _ in range(300):  # shuffled recombinations so the trainers see more pairs
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))))
    return out


def _test_strings():
    s = [
        "", " ", "  ", "\t", "\n", "\n\n", " \n ", "a", "A", ".", "hello", "Hello world",
        "Hello world!", "hello  world", "hello   world  ", "  leading spaces", "trailing spaces   ",
        "tabs\tin\ttext", "new\nlines\r\nand\rreturns", "mixed \t\n whitespace \u00a0 nbsp",
        "don't", "DON'T", "I'M", "I'm", "you're", "they've", "we'll", "he'd", "it's", "It'S",
        "'s 't 're", "rock'n'roll", "O'Neil's",
        "0", "7", "42", "123", "1234", "12345", "123456789012", "3.14159", "-2.5e-3", "1,000,000",
        "$42.50", "99%", "2026-11-23", "10:45pm", "v1.2.3",
        "Hello, world! How are you? I'm fine... (really) [yes] {no} <tag> \"quoted\" 'single'",
        "a-b_c/d\\e|f~g`h^i&j*k+l=m@n#o", "!!!???...;;;:::", "--- *** ___ ===",
        "Café", "café", "CAFÉ", "naïve résumé", "façade jalapeño", "Ångström", "Zürich São Paulo",
        "e\u0301", "cafe\u0301", "n\u0303o", "A\u030a", "\u1e9b\u0323",
        "Ελληνικά", "Привет мир!", "ПРИВЕТ", "東京は日本の首都です。", "中文分词测试，你好世界！",
        "한국어 문장도 있습니다.", "مرحبا بالعالم", "שלום עולם", "हिन्दी", "ภาษาไทย",
        "日本語とEnglishのmix123", "漢字kanji", "😀", "😀🚀🎉", "Emoji 😀 in text", "🇫🇷", "👨‍👩‍👧",
        "👍🏽", "\u200b zero width", "soft\u00adhyphen", "\u0000null\u0001ctrl\u007f",
        "\ufeffbom", "ﬁ ligature", "Ｆｕｌｌ ｗｉｄｔｈ", "™ © ®", "½ ² ³", "①②③",
        "unbelievably", "antidisestablishmentarianism", "internationalization",
        "supercalifragilisticexpialidocious" * 3, "x" * 150, "ab" * 60,
        "def encode(text): return [vocab[t] for t in text.split()]",
        "    indented\n        more\n", "for i in range(10):\n\tprint(i)\n",
        "The quick brown fox jumps over the lazy dog.",
        "THE QUICK BROWN FOX", "tHe QuIcK bRoWn",
        "Delta parameter pruning removes most of the difference between a fine-tuned model and its base.",
        "http://example.com/path?q=1&r=2", "user@example.org", "#hashtag @mention",
        "well-known state-of-the-art -x- a--b -", "``quoted``", "\u0663\u0664 \u00b2 \u2163 x\u2082 \u00bd\u216b", "snake_case_name",
    ]
    return s


def _special_strings(specials):
    out = []
    for t in specials:
        out += [t, f"{t}", f"hello {t} world", f"{t}hello{t}", f"a{t}b", f"  {t}  ", f"{t}{t}",
                f"text before {t}", f"{t} text after", f"x {t}\ny",
                # word characters around a token matter to single_word (\w of Rust's regex crate)
                f"é{t}", f"{t}\u0301", f"_{t}", f"\u00b2{t}", f"\u0663{t}", f"\u200d{t}", f"\u203f{t}", f"-{t}-"]
    return out


def _random_strings(n, seed):
    rng = random.Random(seed)
    pieces = (TOKENIZER_CORPUS.split() + ["don't", "I'M", "'s", "123", "4567", "  ", "\t", "\n",
              " \n", "😀", "é", "e\u0301", "中文", "!?", "...", "'", "-", "A", "ß", "İ", "ǅ"])
    seps = [" ", " ", " ", "", "  ", "\t", "\n", " \n", "   "]
    out = []
    for _ in range(n):
        k = rng.randint(1, 10)
        txt = ""
        for i in range(k):
            txt += rng.choice(pieces) + (rng.choice(seps) if i < k - 1 else "")
        if rng.random() < 0.2:
            txt = txt.upper()
        if rng.random() < 0.1:
            txt = " " + txt
        if rng.random() < 0.1:
            txt = txt + rng.choice([" ", "\n", "  "])
        out.append(txt)
    return out


def _write_tokenizer_fixture(out_dir, name, tok, specials, edit_json=None):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "tokenizer.json")
    tok.save(path, pretty=False)
    if edit_json is not None:
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        edit_json(j)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(path)  # exactly what the Swift side reads
    strings = _test_strings() + _special_strings(specials) + _random_strings(150, seed=len(name))
    seen, cases = set(), []
    for s in strings:
        if s in seen:
            continue
        seen.add(s)
        tok.no_truncation()
        ids = tok.encode(s).ids
        plain = tok.encode(s, add_special_tokens=False).ids
        tok.enable_truncation(max_length=8)
        t8 = tok.encode(s).ids
        t8_plain = tok.encode(s, add_special_tokens=False).ids
        tok.no_truncation()
        case = {
            "text": s, "ids": ids, "ids_plain": plain, "ids_max8": t8, "ids_plain_max8": t8_plain,
            "decoded": tok.decode(ids, skip_special_tokens=True),
        }
        # Foundation's JSON parser on Linux drops a leading U+FEFF from string values:
        # such strings also travel as UTF-8 hex.
        for k in ("text", "decoded"):
            if case[k].startswith("\ufeff"):
                case[k + "_utf8_hex"] = case[k].encode("utf-8").hex()
        cases.append(case)
    with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as f:
        f.write('{"vocab_size":%d,"cases":[\n' % tok.get_vocab_size(with_added_tokens=True))
        f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases))
        f.write("\n]}\n")


def make_tokenizer_fixtures(out_dir):
    """Small BERT WordPiece and byte-level BPE tokenizers under out_dir/tokenizers/NAME/."""
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors, trainers)
    out_dir = os.path.join(out_dir, "tokenizers")
    corpus = _tokenizer_corpus()

    # (a) BERT uncased, (b) BERT cased
    for name, lower in [("bert_uncased", True), ("bert_cased", False)]:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None if lower else False,
            lowercase=lower)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(corpus, trainers.WordPieceTrainer(
            vocab_size=900, special_tokens=specials, min_frequency=1,
            continuing_subword_prefix="##"))
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        if lower:
            tok.post_processor = processors.TemplateProcessing(
                single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
            tok.add_tokens([AddedToken("lopper", normalized=True)])  # matched after lowercasing
        else:
            tok.post_processor = processors.BertProcessing(("[SEP]", sep), ("[CLS]", cls))
            tok.add_tokens([AddedToken("<extra>", normalized=False, single_word=True)])
        tok.decoder = decoders.WordPiece(prefix="##")
        tok.enable_padding(pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]")
        _write_tokenizer_fixture(out_dir, name, tok, ["[SEP]", "[MASK]", "[CLS]", "lopper", "LOPPER", "<extra>"])

    # (c) Llama 3 style byte-level BPE
    tok = Tokenizer(models.BPE(ignore_merges=True, byte_fallback=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=1200, special_tokens=specials, min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, special=True)])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
        special_tokens=[("<|begin_of_text|>", bos)])
    tok.decoder = decoders.ByteLevel()
    _write_tokenizer_fixture(out_dir, "llama3_bpe", tok, specials + ["<mask>"])

    # (d) GPT-2 style: ByteLevel pre-tokenizer with its own regex, NFC, ByteLevel post-processor,
    # merges rewritten as "a b" strings (the older file format)
    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=1000, special_tokens=["<|endoftext|>"], min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()

    def string_merges(j):
        j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    _write_tokenizer_fixture(out_dir, "gpt2_bpe", tok, ["<|endoftext|>"], edit_json=string_merges)

    # (e) Other components on a WordPiece model: normalizer Sequence[NFD, StripAccents, Lowercase,
    # Replace, Strip], pre-tokenizer Sequence[WhitespaceSplit, Split("-", merged_with_next),
    # Whitespace, Digits(individual)], BertProcessing
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.Sequence([
        normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(),
        normalizers.Replace("``", '"'), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split("-", behavior="merged_with_next"),
        pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(
        vocab_size=600, special_tokens=specials, min_frequency=1, continuing_subword_prefix="##"))
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
    tok.decoder = decoders.WordPiece(prefix="##")
    _write_tokenizer_fixture(out_dir, "misc_wordpiece", tok, ["[SEP]", "[MASK]"])

    # (f) RoBERTa style: ByteLevel with add_prefix_space, RobertaProcessing, <mask> with lstrip
    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=800, special_tokens=specials, min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    tok.decoder = decoders.ByteLevel()
    _write_tokenizer_fixture(out_dir, "roberta_bpe", tok, ["<s>", "</s>", "<mask>"])

    # (g) Qwen2 style: NFC + Split(Qwen2 pattern) + ByteLevel, ignore_merges false
    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=1000, special_tokens=specials, min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    _write_tokenizer_fixture(out_dir, "qwen2_bpe", tok, specials)


def _torch_compat():
    """transformers 5.x asks for torch >= 2.6; this machine has torch 2.5. The
    modelling code we use (eager attention, CPU, no training) runs on 2.5, so
    pretend to be 2.6 and stub the few names imported at module load time."""
    import importlib.metadata as metadata
    import types

    real_version = metadata.version
    import torch

    if tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 6):
        return
    metadata.version = lambda name: "2.6.0" if name == "torch" else real_version(name)
    import torch.distributed.fsdp as fsdp

    for name in ("CPUOffloadPolicy", "MixedPrecisionPolicy", "FSDPModule", "fully_shard"):
        if not hasattr(fsdp, name):
            setattr(fsdp, name, type(name, (), {}))
    import torch._dynamo._trace_wrapped_higher_order_op as wrapped

    if not hasattr(wrapped, "TransformGetItemToIndex"):
        from torch.overrides import TorchFunctionMode

        class TransformGetItemToIndex(TorchFunctionMode):
            def __torch_function__(self, func, types_, args=(), kwargs=None):
                return func(*args, **(kwargs or {}))

        wrapped.TransformGetItemToIndex = TransformGetItemToIndex
    if not hasattr(torch, "accelerator"):
        accelerator = types.ModuleType("torch.accelerator")
        accelerator.is_available = lambda: False
        accelerator.current_accelerator = lambda *a, **k: None
        accelerator.device_count = lambda: 0
        torch.accelerator = accelerator


LENGTHS = (1, 5, 17)


def _inputs(vocab, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, vocab, (n,), generator=g).tolist() for n in LENGTHS]


def _run(model, inputs, kind):
    """Expected outputs, one sequence at a time."""
    import torch

    out = {}
    with torch.no_grad():
        for i, ids in enumerate(inputs):
            x = torch.tensor([ids])
            if kind == "decoder":
                r = model(input_ids=x, output_hidden_states=True)
                out[f"hidden.{i}"] = r.hidden_states[-1][0]
                out[f"logits.{i}"] = r.logits[0]
            elif kind == "classifier":
                r = model(input_ids=x, output_hidden_states=True)
                out[f"hidden.{i}"] = r.hidden_states[-1][0]
                out[f"logits.{i}"] = r.logits[0]
            else:
                r = model(input_ids=x)
                out[f"hidden.{i}"] = r.last_hidden_state[0]
                if getattr(r, "pooler_output", None) is not None:
                    out[f"pooled.{i}"] = r.pooler_output[0]
    return {k: v.detach().float().contiguous() for k, v in out.items()}


def _save(model, folder, inputs, expected, config_edit=None):
    from safetensors.torch import save_file

    shutil.rmtree(folder, ignore_errors=True)
    model_folder = os.path.join(folder, "model")  # a plain HF folder: a checkpoint takes every .safetensors in it
    model.save_pretrained(model_folder, safe_serialization=True)
    for extra in ("generation_config.json",):
        path = os.path.join(model_folder, extra)
        if os.path.exists(path):
            os.remove(path)
    if config_edit:
        path = os.path.join(model_folder, "config.json")
        with open(path) as f:
            config = json.load(f)
        config_edit(config)
        with open(path, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
    with open(os.path.join(folder, "inputs.json"), "w") as f:
        json.dump({"inputs": inputs}, f)
    save_file(expected, os.path.join(folder, "expected.safetensors"))


def make_model_fixtures(out_dir):
    _torch_compat()
    import torch
    from transformers import (BertConfig, BertForSequenceClassification, BertModel, LlamaConfig,
                              LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM, RobertaConfig,
                              RobertaForSequenceClassification)

    os.makedirs(out_dir, exist_ok=True)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
                 initializer_range=0.2)  # large enough that attention is far from uniform

    def decoder(name, cls, config, seed, dtype=None, config_edit=None):
        torch.manual_seed(seed)
        config._attn_implementation = "eager"
        model = cls(config).eval()
        with torch.no_grad():  # random norm weights, so the tests see them used
            for n, p in model.named_parameters():
                if p.dim() == 1:
                    p.add_(torch.randn_like(p) * 0.1)
        if dtype is not None:
            model = model.to(dtype)
        reference = model.float() if dtype is None else cls(config).eval()
        if dtype is not None:
            reference.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
        inputs = _inputs(config.vocab_size, seed)
        expected = _run(reference, inputs, "decoder")
        _save(model, os.path.join(out_dir, name), inputs, expected, config_edit)

    llama = dict(small, num_key_value_heads=2, vocab_size=128, rms_norm_eps=1e-5, tie_word_embeddings=False)
    decoder("llama", LlamaForCausalLM, LlamaConfig(**llama), 1)
    decoder("llama_bf16", LlamaForCausalLM, LlamaConfig(**llama), 1, dtype=torch.bfloat16)
    decoder("llama_rope_linear", LlamaForCausalLM,
            LlamaConfig(**llama, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}), 2)

    def v4_rope(config):  # the transformers 4.x spelling: rope_theta + rope_scaling
        params = config.pop("rope_parameters")
        config["rope_theta"] = params.pop("rope_theta")
        config["rope_scaling"] = params

    decoder("llama3_rope", LlamaForCausalLM,
            LlamaConfig(**dict(llama, tie_word_embeddings=True),
                        rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
                                         "rope_theta": 500000.0}), 3, config_edit=v4_rope)
    decoder("mistral_window", MistralForCausalLM,
            MistralConfig(**dict(llama, sliding_window=4), rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
            8)
    decoder("qwen2", Qwen2ForCausalLM,
            Qwen2Config(**dict(small, hidden_size=48, num_attention_heads=4, num_key_value_heads=2, vocab_size=160,
                               rms_norm_eps=1e-6, tie_word_embeddings=True),
                        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), 4)

    def encoder(name, cls, config, seed, kind):
        torch.manual_seed(seed)
        config._attn_implementation = "eager"
        model = cls(config).eval()
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.dim() == 1:
                    p.add_(torch.randn_like(p) * 0.1)
        inputs = _inputs(config.vocab_size, seed)
        _save(model, os.path.join(out_dir, name), inputs, _run(model, inputs, kind))

    bert = dict(small, vocab_size=128, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12)
    encoder("bert", BertModel, BertConfig(**bert), 5, "encoder")
    encoder("bert_classifier", BertForSequenceClassification, BertConfig(**bert, num_labels=3), 6, "classifier")
    encoder("roberta_classifier", RobertaForSequenceClassification,
            RobertaConfig(**dict(bert, type_vocab_size=1, layer_norm_eps=1e-5), pad_token_id=1, num_labels=2), 7,
            "classifier")


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LopperModelsTests", "Fixtures")
    make_tokenizer_fixtures(root)
    make_model_fixtures(os.path.join(root, "models"))


if __name__ == "__main__":
    sys.exit(main())
