#!/usr/bin/env python3
"""Writes tests/fixtures/optim/adamw.safetensors: what torch.optim.AdamW,
transformers' get_cosine_schedule_with_warmup and torch.nn.utils.clip_grad_norm_ do to a
small parameter vector over a few steps, for tests/unit/test_optim.c.

Two parameter groups as the distillation uses them: the first 12 entries decayed
(weight_decay 0.1), the last 4 not. Gradients are seeded random, scaled so that clipping
at max_norm 1.0 acts on some steps and not on others.
"""
import argparse
import os

import torch
from safetensors.torch import save_file
from transformers import get_cosine_schedule_with_warmup

STEPS, WARMUP, N, N_DECAY = 6, 2, 16, 12
LR, WD, MAX_NORM = 0.05, 0.1, 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures", "optim", "adamw.safetensors"))
    args = ap.parse_args()
    g = torch.Generator().manual_seed(7)
    p0 = torch.randn(N, generator=g)
    grads = torch.randn(STEPS, N, generator=g) * torch.tensor([0.1, 2.0, 0.2, 0.5, 3.0, 0.05])[:, None]
    p = p0.clone().requires_grad_(False)
    decayed = torch.nn.Parameter(p[:N_DECAY].clone())
    plain = torch.nn.Parameter(p[N_DECAY:].clone())
    opt = torch.optim.AdamW([{"params": [decayed], "weight_decay": WD},
                             {"params": [plain], "weight_decay": 0.0}], lr=LR)
    sched = get_cosine_schedule_with_warmup(opt, WARMUP, STEPS)
    lrs, norms, after = [], [], []
    for s in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        decayed.grad = grads[s, :N_DECAY].clone()
        plain.grad = grads[s, N_DECAY:].clone()
        norms.append(float(torch.nn.utils.clip_grad_norm_([decayed, plain], MAX_NORM)))
        opt.step()
        sched.step()
        after.append(torch.cat([decayed.detach(), plain.detach()]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_file({"params0": p0, "grads": grads.contiguous(),
               "lr": torch.tensor(lrs, dtype=torch.float64),
               "grad_norm": torch.tensor(norms, dtype=torch.float64),
               "params": torch.stack(after)},
              args.out, metadata={"steps": str(STEPS), "warmup": str(WARMUP), "lr": str(LR),
                                  "weight_decay": str(WD), "max_norm": str(MAX_NORM),
                                  "decayed": str(N_DECAY), "torch": torch.__version__})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
