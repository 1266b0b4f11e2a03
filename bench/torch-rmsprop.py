# One PyTorch RMSprop step (float64, in place, the default single-tensor CPU
# path) per size; prints "n seconds_per_step threads" lines for bench/bench.R.
# Usage: python3 bench/torch-rmsprop.py THREADS N1 N2 ...
import sys, time, statistics
import torch

threads = int(sys.argv[1])
torch.set_num_threads(threads)
for n in [int(float(a)) for a in sys.argv[2:]]:
    p = torch.nn.Parameter(torch.randn(n, dtype=torch.float64))
    p.grad = torch.randn(n, dtype=torch.float64)
    opt = torch.optim.RMSprop([p], lr=0.001, alpha=0.9, eps=1e-7)
    with torch.no_grad():
        opt.step()
    inner = max(1, min(2000, int(2e6 // max(n, 1))))
    samples = []
    budget = time.perf_counter() + 3.0
    while len(samples) < 15 or (time.perf_counter() < budget and len(samples) < 200):
        t0 = time.perf_counter()
        for _ in range(inner):
            opt.step()
        samples.append((time.perf_counter() - t0) / inner)
    print(n, statistics.median(samples), torch.get_num_threads(), flush=True)
