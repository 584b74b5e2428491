#!/usr/bin/python3
"""Train qforge's built-in default model, models/qforge-tiny-shakespeare/, from scratch.

A 1.1M-parameter Llama (RMSNorm, RoPE in Hugging Face's half-split layout, GQA attention,
SwiGLU MLP, tied embeddings) and a 1024-piece SentencePiece BPE tokenizer, both trained on the
first 90% of tinyshakespeare (public-domain Shakespeare; ../shared/data/SOURCES.md). The last
10% (by bytes, cut at a line start) is held out for validation. The result is written in Hugging
Face layout (config.json, generation_config.json, model.safetensors in BF16, tokenizer.model,
tokenizer_config.json) plus MODEL_CARD.md and reference.json with the measured losses.

Only retraining needs this script; building and testing qforge do not. Its dependencies are
Debian 12 packages that scripts/setup.sh does NOT install:
    apt-get install python3-torch python3-numpy python3-sentencepiece
and it must run with Debian's interpreter, /usr/bin/python3 (torch 1.13, CPU):
    /usr/bin/python3 scripts/train_default_model.py \
        --data ../shared/data/tinyshakespeare/input.txt --out models/qforge-tiny-shakespeare
Deterministic: fixed seeds, torch.set_num_threads(2), CPU only; about 35 minutes on 2 cores.
`--bench-steps N` only times N training steps and exits (to size the run for a machine).
`--heldout-out FILE` also writes the held-out text (for `qforge eval ppl --dataset FILE`).
Next to the model it writes heldout.txt (the whole held-out split, for `qforge eval ppl`) and
calib.txt (the first 64 KiB of the training split, cut at a line end, for `qforge quantize
--calib`); both are derived from third-party text, so they are git-ignored and a checkout gets
them from scripts/default_model_data.sh (run by scripts/setup.sh). `--extras-only` rewrites
those two files and MODEL_CARD.md from an existing --out/reference.json without training.

The perplexity this script reports follows qforge's stream protocol exactly (src/eval/
ppl_dataset.cpp): the text (CRLF->LF) encoded once without BOS, chunks of [BOS] + ctx-1 ids,
non-overlapping, the incomplete last chunk dropped, every token after position 0 scored, PPL =
exp(mean NLL) -- computed in float32 from the BF16-rounded weights that are saved, so `qforge eval
ppl --ctx <ctx>` on the held-out file must print the same number (the export check).
"""

import argparse
import hashlib
import json
import math
import os
import struct
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

SEED = 1234


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data/tinyshakespeare/input.txt")
    p.add_argument("--out", default="models/qforge-tiny-shakespeare")
    p.add_argument("--vocab", type=int, default=1024)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--seq", type=int, default=256, help="training sequence length, BOS included")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=1400)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--eval-ctx", type=int, default=256, help="qforge eval ppl --ctx for the card")
    p.add_argument("--heldout-frac", type=float, default=0.1)
    p.add_argument("--bench-steps", type=int, default=0)
    p.add_argument("--heldout-out", default="")
    p.add_argument("--extras-only", action="store_true",
                   help="only (re)write heldout.txt, calib.txt and MODEL_CARD.md from --out/reference.json")
    return p.parse_args()


# ---------------------------------------------------------------- data and tokenizer


def split_text(raw: bytes, frac: float):
    """Train = bytes [0, cut), held out = [cut, end); cut is the line start nearest 1 - frac."""
    cut = raw.index(b"\n", int(len(raw) * (1 - frac))) + 1
    return cut


def train_tokenizer(train_text: str, out_dir: str, vocab: int):
    tmp = os.path.join(out_dir, "_spm_train.txt")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(train_text)
    prefix = os.path.join(out_dir, "tokenizer")
    # The Llama-2 recipe (BPE, byte_fallback, split_digits, identity normalization, whitespace
    # kept) except add_dummy_prefix=false: the trainer sees one line per sentence, and in the
    # encoded stream a line's first word follows "\n", not a space, so its pieces carry no "▁".
    spm.SentencePieceTrainer.train(
        input=tmp,
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=vocab,
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        allow_whitespace_only_pieces=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=2,
        seed_sentencepiece_size=100000,
        minloglevel=2,
    )
    os.remove(tmp)
    os.remove(prefix + ".vocab")
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


# ---------------------------------------------------------------- the model (HF Llama math)


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(seq, head_dim, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(seq, dtype=torch.float32), inv)
    emb = torch.cat([freqs, freqs], dim=-1)  # HF half-split: pairs (i, i + head_dim/2)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Block(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        d, hd = a.dim, a.dim // a.heads
        self.heads, self.kv_heads, self.head_dim = a.heads, a.kv_heads, hd
        self.input_layernorm = RMSNorm(d, a.eps)
        self.q_proj = torch.nn.Linear(d, a.heads * hd, bias=False)
        self.k_proj = torch.nn.Linear(d, a.kv_heads * hd, bias=False)
        self.v_proj = torch.nn.Linear(d, a.kv_heads * hd, bias=False)
        self.o_proj = torch.nn.Linear(a.heads * hd, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d, a.eps)
        self.gate_proj = torch.nn.Linear(d, a.hidden, bias=False)
        self.up_proj = torch.nn.Linear(d, a.hidden, bias=False)
        self.down_proj = torch.nn.Linear(a.hidden, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        k = k.repeat_interleave(rep, dim=1)  # query head i uses kv head i // rep (HF order)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        y = att.softmax(-1) @ v
        x = x + self.o_proj(y.transpose(1, 2).reshape(b, t, -1))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(a.vocab, a.dim)
        self.layers = torch.nn.ModuleList([Block(a) for _ in range(a.layers)])
        self.norm = RMSNorm(a.dim, a.eps)
        cos, sin = rope_tables(a.max_pos, a.dim // a.heads, a.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 2:
                # GPT-2 style: residual output projections scaled by 1/sqrt(2 * layers)
                s = std / math.sqrt(2 * a.layers) if name.endswith(("o_proj.weight", "down_proj.weight")) else std
                torch.nn.init.normal_(p, 0.0, s)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.embed_tokens(ids)
        cos, sin = self.cos[:t], self.sin[:t]
        mask = torch.full((t, t), float("-inf")).triu(1)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x) @ self.embed_tokens.weight.t()  # tied head

    def hf_state_dict(self):
        out = {"model.embed_tokens.weight": self.embed_tokens.weight}
        for i, l in enumerate(self.layers):
            p = f"model.layers.{i}."
            out[p + "input_layernorm.weight"] = l.input_layernorm.weight
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                out[p + f"self_attn.{n}.weight"] = getattr(l, n).weight
            out[p + "post_attention_layernorm.weight"] = l.post_attention_layernorm.weight
            for n in ("gate_proj", "up_proj", "down_proj"):
                out[p + f"mlp.{n}.weight"] = getattr(l, n).weight
        out["model.norm.weight"] = self.norm.weight
        return out


def round_to_bf16_(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))


# ---------------------------------------------------------------- qforge's PPL protocol


@torch.no_grad()
def stream_ppl(model, ids, ctx, bos, max_chunks=0):
    """qforge eval ppl (stream mode, [BOS] + ctx-1 ids per chunk, non-overlapping, scoring all)."""
    body = ctx - 1
    chunks = [ids[s : s + body] for s in range(0, len(ids) - body + 1, body)]
    if max_chunks:
        chunks = chunks[:max_chunks]
    total, n = 0.0, 0
    for i in range(0, len(chunks), 8):
        x = torch.tensor([[bos] + c for c in chunks[i : i + 8]], dtype=torch.long)
        logits = model(x).double()
        nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
        total += nll.item()
        n += x[:, 1:].numel()
    return math.exp(total / n), total / n, n, len(chunks)


@torch.no_grad()
def greedy(model, prompt_ids, n):
    ids = list(prompt_ids)
    for _ in range(n):
        logits = model(torch.tensor([ids[-model.cos.shape[0] :]], dtype=torch.long))
        ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt_ids) :]


# ---------------------------------------------------------------- writing the checkpoint


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_extras(a, raw, cut):
    """heldout.txt, calib.txt and MODEL_CARD.md next to the model (from reference.json)."""
    with open(os.path.join(a.out, "heldout.txt"), "wb") as f:
        f.write(raw[cut:])
    calib_end = raw.rindex(b"\n", 0, 65536) + 1
    with open(os.path.join(a.out, "calib.txt"), "wb") as f:
        f.write(raw[:calib_end])
    ref = json.load(open(os.path.join(a.out, "reference.json")))
    cfg = json.load(open(os.path.join(a.out, "config.json")))
    d, tr, hp = ref["data"], ref["train"], ref["heldout_ppl"]
    size = os.path.getsize(os.path.join(a.out, "model.safetensors"))
    last_losses = [l for s, l in tr["loss_log"][-5:]]
    card = CARD.format(
        sha=hashlib.sha256(raw).hexdigest(), nbytes=d["bytes"], cut=cut, calib_end=calib_end,
        train_tokens=d["train_tokens"], heldout_tokens=d["heldout_tokens"], vocab=cfg["vocab_size"],
        dim=cfg["hidden_size"], layers=cfg["num_hidden_layers"], heads=cfg["num_attention_heads"],
        kv=cfg["num_key_value_heads"], hd=cfg["head_dim"], hidden=cfg["intermediate_size"],
        maxpos=cfg["max_position_embeddings"], params=ref["params"], size=size,
        steps=tr["steps"], batch=tr["batch"], seq=tr["seq"], seq_m1=tr["seq"] - 1, ctx_m1=hp["ctx"] - 1, lr=tr["lr"], minutes=tr["seconds"] / 60,
        tokens=tr["steps"] * tr["batch"] * (tr["seq"] - 1),
        epochs=tr["steps"] * tr["batch"] * (tr["seq"] - 1) / d["train_tokens"],
        last_losses=", ".join(f"{l:.3f}" for l in last_losses),
        train_ppl=ref["train_ppl_first64"]["ppl"], train_nll=ref["train_ppl_first64"]["mean_nll"],
        ctx=hp["ctx"], val_ppl=hp["ppl"], val_nll=hp["mean_nll"], val_n=hp["scored_tokens"],
        val_chunks=hp["chunks"], prompt=ref["greedy"]["prompt"],
        sample=ref["greedy"]["text"].replace("\n", "\n    "))
    # The hand-measured qforge section of an existing card is kept (re-measure it after retraining).
    card_path = os.path.join(a.out, "MODEL_CARD.md")
    marker = "\n## Checked with qforge"
    if os.path.exists(card_path):
        old = open(card_path, encoding="utf-8").read()
        if marker in old:
            card += old[old.index(marker):]
    with open(card_path, "w", encoding="utf-8") as f:
        f.write(card)


CARD = """# qforge-tiny-shakespeare

qforge's built-in default model: a {params:,}-parameter Llama trained from scratch by
`scripts/train_default_model.py` on public-domain Shakespeare. No third-party weights: every
number here was produced by that script (data, tokenizer, weights) on a CPU.

## Data

- `tinyshakespeare/input.txt` (karpathy/char-rnn; {nbytes:,} bytes, sha256 `{sha}`): plays of
  William Shakespeare, **public domain** (see `../shared/data/SOURCES.md`).
- Train split: bytes **[0, {cut:,})** ({train_tokens:,} tokens). Held-out split: bytes
  **[{cut:,}, {nbytes:,})** ({heldout_tokens:,} tokens), the last 10% cut at a line start; never
  seen by the tokenizer or the model. `scripts/default_model_data.sh` (run by `scripts/setup.sh`)
  cuts it from ../shared into `heldout.txt` here (derived third-party text: not committed).
- `calib.txt`: bytes [0, {calib_end:,}) of the train split, calibration text for `qforge quantize`
  (written the same way, not committed).
- License of this model: the training text is public domain; the weights and tokenizer are this
  project's own work, under the repository's terms.

## Tokenizer (`tokenizer.model`)

SentencePiece 0.1.97 BPE, vocab {vocab}, trained on the train split only: byte_fallback (so any
UTF-8 text encodes; "\\n" is the byte piece `<0x0A>`), split_digits, identity normalization,
whitespace kept, **add_dummy_prefix off** (in the encoded stream a line's first word follows a
newline, not a space). `<unk>` 0, `<s>` 1 (BOS), `</s>` 2 (EOS).

## Architecture (`config.json`, `LlamaForCausalLM`)

| field | value |
| --- | --- |
| hidden_size / layers | {dim} / {layers} |
| heads / KV heads / head_dim | {heads} / {kv} (GQA) / {hd} |
| intermediate_size (SwiGLU) | {hidden} |
| vocab / tied embeddings | {vocab} / yes |
| RoPE | theta 10000, Hugging Face half-split layout; max_position_embeddings {maxpos} |
| RMSNorm eps | 1e-5 |
| parameters | {params:,} |
| `model.safetensors` | BF16, {size:,} bytes |

## Training

AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), peak lr {lr}, 100 warm-up steps, cosine
to 10%, gradient clip 1.0; {steps} steps of {batch} sequences x {seq} tokens ([BOS] + {seq_m1}
consecutive train-split ids at a random start): {tokens:,} tokens, {epochs:.1f} epochs. Float32 on
2 CPU threads, seed 1234; {minutes:.0f} minutes on a shared 2-core machine. Training loss of the
last logged batches: {last_losses}.

## Measured by the script

Protocol (qforge `eval ppl` stream mode, `include/qforge/eval/perplexity.h`): the text encoded once
without BOS, non-overlapping chunks of [BOS] + {ctx_m1} ids (ctx {ctx}), the incomplete last chunk
dropped, every token after position 0 scored, PPL = exp(mean NLL); float32 math on the saved BF16
weights.

| split | PPL | mean NLL (nats/token) | scored tokens |
| --- | --- | --- | --- |
| held-out (`heldout.txt`, {val_chunks} chunks) | **{val_ppl:.4f}** | {val_nll:.5f} | {val_n:,} |
| train (first 64 chunks) | {train_ppl:.4f} | {train_nll:.5f} | 64 x {ctx_m1} |

Greedy continuation of `{prompt}` (BOS + prompt, 48 tokens):

    {sample}

## Retrain

Needs only Debian 12 packages that `scripts/setup.sh` does not install (the build and the tests
never need them):

    apt-get install python3-torch python3-numpy python3-sentencepiece
    /usr/bin/python3 scripts/train_default_model.py \\
        --data ../shared/data/tinyshakespeare/input.txt --out models/qforge-tiny-shakespeare

Deterministic for a given machine and torch build (fixed seeds, 2 threads, CPU): two 20-step runs
gave bit-identical model.safetensors and identical tokenizer pieces and scores (a second full
run has not been made). tokenizer.model's trainer_spec records the paths it was trained with
(`/tmp/qtiny/...` for this file), so its bytes, not its vocabulary, depend on `--out`. Retraining rewrites the sections above and keeps
the qforge section below as it was: re-measure it (and `tests/model/test_default_model.cpp`'s
reference values).
"""


def main():
    a = parse_args()
    a.eps, a.rope_theta, a.max_pos = 1e-5, 10000.0, a.seq
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(2)
    os.makedirs(a.out, exist_ok=True)

    raw = open(a.data, "rb").read().replace(b"\r\n", b"\n")
    cut = split_text(raw, a.heldout_frac)
    train_text, held_text = raw[:cut].decode("utf-8"), raw[cut:].decode("utf-8")
    if a.heldout_out:
        with open(a.heldout_out, "w", encoding="utf-8") as f:
            f.write(held_text)
    if a.extras_only:
        write_extras(a, raw, cut)
        return
    sp = train_tokenizer(train_text, a.out, a.vocab)
    train_ids = np.array(sp.encode(train_text), dtype=np.int64)
    held_ids = sp.encode(held_text)
    bos, eos = sp.bos_id(), sp.eos_id()
    print(f"text {len(raw)} bytes: train [0, {cut}) -> {len(train_ids)} ids, held out [{cut}, {len(raw)}) "
          f"-> {len(held_ids)} ids; {len(train_text) / len(train_ids):.2f} chars/token", flush=True)

    model = Llama(a)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters", flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(SEED)
    steps = a.bench_steps or a.steps
    body = a.seq - 1
    t0, log = time.time(), []
    for step in range(steps):
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = rng.integers(0, len(train_ids) - body, size=a.batch)
        x = torch.from_numpy(np.stack([np.concatenate([[bos], train_ids[s : s + body]]) for s in starts]))
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            el = time.time() - t0
            tok_s = (step + 1) * a.batch * body / el
            print(f"step {step:5d} loss {loss.item():.4f} lr {lr:.2e} {el:7.1f}s {tok_s:7.0f} tok/s", flush=True)
            log.append((step, round(loss.item(), 4)))
        if step > 0 and step % 500 == 0:
            model.eval()
            print(f"  held-out ppl (ctx {a.eval_ctx}, 16 chunks): {stream_ppl(model, held_ids, a.eval_ctx, bos, 16)[0]:.3f}", flush=True)
            model.train()
    train_seconds = time.time() - t0
    if a.bench_steps:
        return

    # Evaluate exactly what is saved: the BF16-rounded weights, in float32.
    model.eval()
    round_to_bf16_(model)
    val_ppl, val_nll, val_n, val_chunks = stream_ppl(model, held_ids, a.eval_ctx, bos)
    train_ppl, train_nll, train_n, _ = stream_ppl(model, train_ids.tolist(), a.eval_ctx, bos, 64)
    print(f"final (bf16 weights): held-out ppl {val_ppl:.4f} (nll {val_nll:.5f}, {val_n} tokens, {val_chunks} chunks); "
          f"train ppl (first 64 chunks) {train_ppl:.4f}", flush=True)

    hd = a.dim // a.heads
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
        "attention_dropout": 0.0, "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": None,
        "head_dim": hd, "hidden_act": "silu", "hidden_size": a.dim, "initializer_range": 0.02,
        "intermediate_size": a.hidden, "max_position_embeddings": a.max_pos, "mlp_bias": False,
        "num_attention_heads": a.heads, "num_hidden_layers": a.layers, "num_key_value_heads": a.kv_heads,
        "pretraining_tp": 1, "rms_norm_eps": a.eps, "rope_scaling": None, "rope_theta": a.rope_theta,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": a.vocab,
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(a.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "eos_token_id": eos, "do_sample": False}, f, indent=2)
        f.write("\n")
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
                   "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "legacy": False,
                   "model_max_length": a.max_pos, "clean_up_tokenization_spaces": False}, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(a.out, "model.safetensors"), model.hf_state_dict())

    prompt = "ROMEO:"
    prompt_ids = [bos] + sp.encode(prompt)
    out_ids = greedy(model, prompt_ids, 48)
    ref = {
        "data": {"file": "tinyshakespeare/input.txt", "bytes": len(raw), "train_bytes": [0, cut],
                 "heldout_bytes": [cut, len(raw)], "train_tokens": len(train_ids), "heldout_tokens": len(held_ids)},
        "params": n_params,
        "train": {"steps": a.steps, "batch": a.batch, "seq": a.seq, "lr": a.lr, "seconds": round(train_seconds, 1),
                  "loss_log": log},
        "ppl_protocol": f"qforge eval ppl stream mode: [BOS] + {a.eval_ctx - 1} ids per chunk, non-overlapping, "
                        "scoring all tokens after position 0; float32 math on the BF16 weights",
        "heldout_ppl": {"ctx": a.eval_ctx, "ppl": val_ppl, "mean_nll": val_nll, "scored_tokens": val_n,
                        "chunks": val_chunks},
        "train_ppl_first64": {"ctx": a.eval_ctx, "ppl": train_ppl, "mean_nll": train_nll, "scored_tokens": train_n},
        "greedy": {"prompt": prompt, "prompt_ids": prompt_ids, "output_ids": out_ids,
                   "text": sp.decode(out_ids)},
    }
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(json.dumps(ref["greedy"], indent=1))
    write_extras(a, raw, cut)


if __name__ == "__main__":
    sys.exit(main())
