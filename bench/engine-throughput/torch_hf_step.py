"""The Hugging Face-shaped bench model of run.ts in PyTorch: a LlamaForCausalLM (RMSNorm, RoPE,
SwiGLU, grouped-query attention, tied head) with random weights, a LoRA adapter on all seven
projections (base frozen), one Adam step on -mean log p(next token), and KV-cache sampling.

Usage: torch_hf_step.py STEPS JSON where JSON gives vocab, d, layers, heads, kv_heads, ff,
batch, seq, rank, alpha, sample_batch, prompt, new_tokens. Prints step_ms=... (best of STEPS),
sample_tok_s=... (best of 2) and peak_rss_mb=...
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    def __init__(self, d_in, d_out, r, alpha):
        super().__init__()
        self.base = nn.Linear(d_in, d_out, bias=False)
        self.base.weight.requires_grad_(False)
        self.a = nn.Parameter(torch.empty(r, d_in).uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in)))
        self.b = nn.Parameter(torch.zeros(d_out, r))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.a.t()) @ self.b.t() * self.scale


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, H, Hkv, ff, r, a = c["d"], c["heads"], c["kv_heads"], c["ff"], c["rank"], c["alpha"]
        self.H, self.Hkv, self.hd = H, Hkv, d // H
        self.ln1, self.ln2 = RMSNorm(d), RMSNorm(d)
        self.q = LoRALinear(d, H * self.hd, r, a)
        self.k = LoRALinear(d, Hkv * self.hd, r, a)
        self.v = LoRALinear(d, Hkv * self.hd, r, a)
        self.o = LoRALinear(H * self.hd, d, r, a)
        self.gate = LoRALinear(d, ff, r, a)
        self.up = LoRALinear(d, ff, r, a)
        self.down = LoRALinear(ff, d, r, a)

    def forward(self, x, cos, sin, cache=None):
        b, t, _ = x.shape
        a = self.ln1(x)
        q = self.q(a).view(b, t, self.H, self.hd).transpose(1, 2)
        k = self.k(a).view(b, t, self.Hkv, self.hd).transpose(1, 2)
        v = self.v(a).view(b, t, self.Hkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if cache:
                k = torch.cat([cache[0], k], 2)
                v = torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        g = self.H // self.Hkv
        k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        if t > 1:
            scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
        x = x + self.o(o)
        m = self.ln2(x)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(c["vocab"], c["d"])
        self.embed.weight.requires_grad_(False)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["d"])
        hd = c["d"] // c["heads"]
        self.inv_freq = 1.0 / (100000.0 ** (torch.arange(0, hd, 2).float() / hd))

    def forward(self, ids, start=0, caches=None):
        t = ids.shape[1]
        freqs = torch.arange(start, start + t).float()[:, None] * self.inv_freq[None]
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos(), emb.sin()
        x = self.embed(ids)
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x) @ self.embed.weight.t()


def main():
    steps = int(sys.argv[1])
    c = json.loads(sys.argv[2])
    torch.manual_seed(0)
    model = Model(c)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2 and not p.requires_grad:
                p.normal_(0, 0.02)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)
    ids = torch.randint(0, c["vocab"], (c["batch"], c["seq"]))

    def step():
        logits = model(ids)[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    print(f"step_ms={min(times):.1f}", flush=True)

    def sample():
        with torch.no_grad():
            caches = [[] for _ in model.blocks]
            prompt = torch.randint(0, c["vocab"], (c["sample_batch"], c["prompt"]))
            logits = model(prompt, 0, caches)[:, -1]
            for s in range(c["new_tokens"]):
                tok = torch.multinomial(logits.softmax(-1), 1)
                if s == c["new_tokens"] - 1:
                    break
                logits = model(tok, c["prompt"] + s, caches)[:, -1]

    sample()
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        sample()
        best = min(best, time.perf_counter() - t0)
    print(f"sample_tok_s={c['sample_batch'] * c['new_tokens'] / best:.1f}")
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if __name__ == "__main__":
    main()
