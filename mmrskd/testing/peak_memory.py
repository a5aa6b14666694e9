"""Peak memory of one call, on the CPU as on CUDA."""
from typing import Callable

import torch


def peak_bytes(fn: Callable[[], object], device: str = 'cpu') -> int:
    """The most bytes PyTorch's allocator held above its level at the start
    of ``fn()``: ``max_memory_allocated`` on CUDA; on the CPU, the running
    sum of the profiler's allocation events (there is no CPU peak counter).
    """
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events()
                     if e.name() == '[memory]'), key=lambda e: e.start_ns())
    level = peak = 0
    for event in events:
        level += event.nbytes()
        peak = max(peak, level)
    return peak
