"""The model, Adam step and KV-cache sampling loop of run.ts in PyTorch, for speed ratios.

Same architecture: pre-norm blocks, learned positions, tied head, tanh GELU; loss = -mean
log p(next token). Usage: torch_step.py STEPS [JSON] where JSON gives vocab, context, d,
layers, heads, ff, batch, seq (default: the reference model). Prints step_ms=... (best of
STEPS, like run.ts) and sample_tok_s=... (batch 32, 63 new tokens after a 1-token prompt, best of 3)."""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CFG = dict(vocab=96, context=128, d=128, layers=4, heads=4, ff=512, batch=32, seq=64)


def attention(q, k, v, causal):
    # Debian's torch 1.13 predates F.scaled_dot_product_attention; the explicit form is the same math.
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    scores = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
    if causal:
        t = q.shape[-2]
        mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    return scores.softmax(-1) @ v


class Block(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.h = heads
        self.ln1 = nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln2 = nn.LayerNorm(d)
        self.up = nn.Linear(d, ff)
        self.down = nn.Linear(ff, d)

    def forward(self, x, cache=None):
        b, t, d = x.shape
        a = self.ln1(x)
        heads = lambda z: z.view(b, t, self.h, d // self.h).transpose(1, 2)
        q, k, v = heads(self.q(a)), heads(self.k(a)), heads(self.v(a))
        if cache is not None:
            if cache:
                k = torch.cat([cache[0], k], 2)
                v = torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        # With a cache, one query attends to every cached key: no mask needed.
        y = attention(q, k, v, causal=t > 1)
        x = x + self.o(y.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocab"], c["d"])
        self.wpe = nn.Embedding(c["context"], c["d"])
        self.blocks = nn.ModuleList(Block(c["d"], c["heads"], c["ff"]) for _ in range(c["layers"]))
        self.lnf = nn.LayerNorm(c["d"])

    def forward(self, ids, start=0, caches=None):
        pos = torch.arange(start, start + ids.shape[1])
        x = self.wte(ids) + self.wpe(pos)
        for i, blk in enumerate(self.blocks):
            x = blk(x, None if caches is None else caches[i])
        return self.lnf(x) @ self.wte.weight.T


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    c = dict(CFG, **(json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
    torch.manual_seed(0)
    model = GPT(c)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
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
    print(f"step_ms={min(times):.1f}")

    def sample(batch, new_tokens):
        with torch.no_grad():
            caches = [[] for _ in model.blocks]
            tok = torch.randint(0, c["vocab"], (batch, 1))
            for s in range(new_tokens):
                logits = model(tok, start=s, caches=caches)[:, -1]
                tok = torch.multinomial(logits.softmax(-1), 1)

    new_tokens = min(63, c["context"] - 1)
    sample(32, new_tokens)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        sample(32, new_tokens)
        best = min(best, time.perf_counter() - t0)
    print(f"sample_tok_s={32 * new_tokens / best:.1f}")


if __name__ == "__main__":
    main()
