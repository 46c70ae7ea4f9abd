#!/usr/bin/env bash
# One-off probe of the lent GPU machine: libraries our cudarc build dlopens, versions, and the
# cost of the f64 dense factorisations at n = 20,000 (torch/cuSOLVER) to size the GP design.
set -u
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
ldconfig -p | grep -E 'libcuda\.so|libnvrtc|libcublas\.|libcusolver|libcusparse|libcublasLt' 
python3 - <<'PY'
import torch, time, os, glob
import nvidia
print([p for p in glob.glob(os.path.join(list(nvidia.__path__)[0], "*", "lib", "libcusolver*"))])
n = 20000
A = torch.randn(n, 3, dtype=torch.float64, device="cuda")
K = torch.exp(-0.5 * torch.cdist(A, A).pow(2)); K.diagonal().add_(0.01)
for name, f in [("potrf", lambda: torch.linalg.cholesky(K)),
                ("potrf+potri", lambda: torch.cholesky_inverse(torch.linalg.cholesky(K))),
                ("trsm n x 10000", lambda: torch.linalg.solve_triangular(L, B, upper=False))]:
    L = torch.linalg.cholesky(K); B = K[:, :10000].contiguous()
    f(); torch.cuda.synchronize()
    t = time.perf_counter(); f(); torch.cuda.synchronize(); print(name, time.perf_counter() - t)
PY
