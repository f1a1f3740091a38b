"""Plain-PyTorch reference of the causal LMs the engine loads, written from their published
definitions (transformers' modeling_llama / modeling_qwen2 / modeling_qwen3 / modeling_gpt2 and
PEFT's LoRA layer), reading the same Hugging Face directories the engine reads.

Usage: hf_reference.py JOBS.json  — prints one JSON object per job (a list) on stdout.
A job: {"dir": model dir, "ids": [[...]] (logits of these rows),
        "greedy": {"prompts": [[...]], "steps": N},
        "lora": {"adapter": dir, "ids": [[...]], "weights": [[...]], "entropy_coef": c}}.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        out[name] = t.float() if t.is_floating_point() else t
    return out


def read_weights(d):
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        w = {}
        for f in sorted(set(json.load(open(index))["weight_map"].values())):
            w.update(read_safetensors(os.path.join(d, f)))
        return w
    return read_safetensors(os.path.join(d, "model.safetensors"))


class Lora:
    """PEFT LoRA: y += (alpha/r) * (x A^T) B^T with A [r, d_in], B [d_out, r]."""

    def __init__(self, adapter_dir):
        cfg = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
        r = cfg["r"]
        self.scale = cfg["lora_alpha"] / (math.sqrt(r) if cfg.get("use_rslora") else r)
        self.params = {}
        for k, v in read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors")).items():
            self.params[k[len("base_model.model."):]] = v.clone().requires_grad_(True)

    def delta(self, path, x):
        a = self.params.get(path + ".lora_A.weight")
        if a is None:
            return None
        return (x @ a.t()) @ self.params[path + ".lora_B.weight"].t() * self.scale


class Model:
    def __init__(self, d, lora=None):
        self.cfg = json.load(open(os.path.join(d, "config.json")))
        self.arch = self.cfg["architectures"][0]
        self.w = read_weights(d)
        self.lora = lora
        if self.arch == "GPT2LMHeadModel":
            self.w = {(k if k.startswith("transformer.") or k == "lm_head.weight" else "transformer." + k): v
                      for k, v in self.w.items()}

    # torch Linear: y = x W^T + b; GPT-2 Conv1D: y = x W + b.
    def linear(self, path, x):
        w, b = self.w[path + ".weight"], self.w.get(path + ".bias")
        y = x @ w if self.arch == "GPT2LMHeadModel" else x @ w.t()
        if b is not None:
            y = y + b
        if self.lora is not None:
            d = self.lora.delta(path, x)
            if d is not None:
                y = y + d
        return y

    def inv_freq(self):
        c = self.cfg
        dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        base = c.get("rope_theta", 10000.0)
        inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        s = c.get("rope_scaling")
        if s and s.get("rope_type", s.get("type")) == "llama3":
            factor, lo, hi, old = s["factor"], s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
            low_wavelen, high_wavelen = old / lo, old / hi
            wavelen = 2 * math.pi / inv
            inv_l = torch.where(wavelen > low_wavelen, inv / factor, inv)
            smooth = (old / wavelen - lo) / (hi - lo)
            smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
            medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
            inv = torch.where(medium, smoothed, inv_l)
        elif s and s.get("rope_type", s.get("type")) == "linear":
            inv = inv / s["factor"]
        return inv

    def forward(self, ids, start=0, cache=None):
        """logits [T, V] for one row `ids` [T] at positions start.., with an optional KV cache (a list)."""
        if self.arch == "GPT2LMHeadModel":
            return self.gpt2(ids, start, cache)
        return self.llama(ids, start, cache)

    def attend(self, q, k, v, layer, cache, t):
        # q [H, T, hd], k/v [Hkv, T, hd]; cache holds previous keys/values per layer.
        if cache is not None:
            if len(cache) > layer:
                pk, pv = cache[layer]
                k, v = torch.cat([pk, k], 1), torch.cat([pv, v], 1)
                cache[layer] = (k, v)
            else:
                cache.append((k, v))
        g = q.shape[0] // k.shape[0]
        k, v = k.repeat_interleave(g, 0), v.repeat_interleave(g, 0)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        tk = k.shape[1]
        mask = torch.ones(t, tk, dtype=torch.bool).tril(tk - t)
        scores = scores.masked_fill(~mask, float("-inf"))
        return scores.softmax(-1) @ v

    def llama(self, ids, start, cache):
        c, w = self.cfg, self.w
        H = c["num_attention_heads"]
        Hkv = c.get("num_key_value_heads", H)
        hd = c.get("head_dim") or c["hidden_size"] // H
        eps = c.get("rms_norm_eps", 1e-6)
        t = ids.shape[0]

        def rms(x, wt):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * wt

        def rot(x):
            x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
            return torch.cat([-x2, x1], -1)

        freqs = torch.arange(start, start + t).float()[:, None] * self.inv_freq()[None, :]
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos(), emb.sin()
        h = w["model.embed_tokens.weight"][ids]
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}"
            a = rms(h, w[f"{p}.input_layernorm.weight"])
            q = self.linear(f"{p}.self_attn.q_proj", a).view(t, H, hd)
            k = self.linear(f"{p}.self_attn.k_proj", a).view(t, Hkv, hd)
            v = self.linear(f"{p}.self_attn.v_proj", a).view(t, Hkv, hd)
            if self.arch == "Qwen3ForCausalLM":
                q = rms(q, w[f"{p}.self_attn.q_norm.weight"])
                k = rms(k, w[f"{p}.self_attn.k_norm.weight"])
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
            q = q * cos + rot(q) * sin
            k = k * cos + rot(k) * sin
            o = self.attend(q, k, v, i, cache, t).transpose(0, 1).reshape(t, H * hd)
            h = h + self.linear(f"{p}.self_attn.o_proj", o)
            m = rms(h, w[f"{p}.post_attention_layernorm.weight"])
            gate = self.linear(f"{p}.mlp.gate_proj", m)
            up = self.linear(f"{p}.mlp.up_proj", m)
            h = h + self.linear(f"{p}.mlp.down_proj", F.silu(gate) * up)
        h = rms(h, w["model.norm.weight"])
        head = w["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) else w["lm_head.weight"]
        return h @ head.t()

    def gpt2(self, ids, start, cache):
        c, w = self.cfg, self.w
        H, d = c["n_head"], c["n_embd"]
        hd = d // H
        eps = c.get("layer_norm_epsilon", 1e-5)
        t = ids.shape[0]

        def ln(x, p):
            return F.layer_norm(x, (d,), w[p + ".weight"], w[p + ".bias"], eps)

        def gelu_new(x):
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))

        h = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][start:start + t]
        for i in range(c["n_layer"]):
            p = f"transformer.h.{i}"
            qkv = self.linear(f"{p}.attn.c_attn", ln(h, f"{p}.ln_1"))
            q, k, v = (z.view(t, H, hd).transpose(0, 1) for z in qkv.split(d, -1))
            o = self.attend(q, k, v, i, cache, t).transpose(0, 1).reshape(t, d)
            h = h + self.linear(f"{p}.attn.c_proj", o)
            h = h + self.linear(f"{p}.mlp.c_proj", gelu_new(self.linear(f"{p}.mlp.c_fc", ln(h, f"{p}.ln_2"))))
        h = ln(h, "transformer.ln_f")
        head = w["transformer.wte.weight"] if c.get("tie_word_embeddings", True) else w["lm_head.weight"]
        return h @ head.t()


def greedy(model, prompt, steps, use_cache):
    seq = list(prompt)
    out, logps = [], []
    cache = [] if use_cache else None
    with torch.no_grad():
        logits = model.forward(torch.tensor(seq), 0, cache)[-1]
        for s in range(steps):
            tok = int(torch.argmax(logits))
            out.append(tok)
            logps.append(float(torch.log_softmax(logits, -1)[tok]))
            seq.append(tok)
            if s == steps - 1:
                break
            if use_cache:
                logits = model.forward(torch.tensor([tok]), len(seq) - 1, cache)[-1]
            else:
                logits = model.forward(torch.tensor(seq), 0, None)[-1]
    return out, logps


def run(job):
    result = {}
    model = Model(job["dir"])
    if "ids" in job:
        with torch.no_grad():
            result["logits"] = [model.forward(torch.tensor(row)).flatten().tolist() for row in job["ids"]]
    if "greedy" in job:
        g = job["greedy"]
        result["greedy_cache"] = [greedy(model, p, g["steps"], True) for p in g["prompts"]]
        result["greedy_full"] = [greedy(model, p, g["steps"], False) for p in g["prompts"]]
    if "lora" in job:
        spec = job["lora"]
        lora = Lora(spec["adapter"])
        adapted = Model(job["dir"], lora)
        loss = 0.0
        for row, wts in zip(spec["ids"], spec["weights"]):
            logits = adapted.forward(torch.tensor(row))[:-1]
            logp = torch.log_softmax(logits, -1)
            target = torch.tensor(row[1:])
            lp = logp.gather(1, target[:, None])[:, 0]
            ent = -(logp.exp() * logp).sum(-1)
            loss = loss + (lp * torch.tensor(wts)).sum() + spec["entropy_coef"] * ent.sum()
        loss.backward()
        result["loss"] = float(loss)
        result["grads"] = {k: v.grad.flatten().tolist() for k, v in lora.params.items()}
    return result


def main():
    torch.manual_seed(0)
    jobs = json.load(open(sys.argv[1]))
    print(json.dumps([run(j) for j in jobs]))


if __name__ == "__main__":
    main()
