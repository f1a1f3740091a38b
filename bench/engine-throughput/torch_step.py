"""The reference model and Adam step of run.ts in PyTorch, for a speed ratio.

Same shapes: vocab 96, context 128, d 128, 4 layers, 4 heads, MLP 512, pre-norm, learned
positions, tied head, batch 32 x 64 tokens, loss = -mean log p(next token). Prints step_ms=..."""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, C, D, L, H, B, T = 96, 128, 128, 4, 4, 32, 64


def attention(q, k, v):
    # Debian's torch 1.13 predates F.scaled_dot_product_attention; the explicit form is the same math.
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(mask, float("-inf")).softmax(-1) @ v


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
        self.ln2 = nn.LayerNorm(D)
        self.up = nn.Linear(D, 4 * D)
        self.down = nn.Linear(4 * D, D)

    def forward(self, x):
        b, t, _ = x.shape
        a = self.ln1(x)
        heads = lambda z: z.view(b, t, H, D // H).transpose(1, 2)
        y = attention(heads(self.q(a)), heads(self.k(a)), heads(self.v(a)))
        x = x + self.o(y.transpose(1, 2).reshape(b, t, D))
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, D)
        self.wpe = nn.Embedding(C, D)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.lnf = nn.LayerNorm(D)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for blk in self.blocks:
            x = blk(x)
        return self.lnf(x) @ self.wte.weight.T


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    torch.manual_seed(0)
    model = GPT()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids = torch.randint(0, V, (B, T))

    def step():
        logits = model(ids)[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(f"step_ms={times[len(times) // 2]:.1f}")


if __name__ == "__main__":
    main()
