"""Time DDC against a plain 3x3 conv of the same shape (forward + backward).

Both layers run interleaved in one process on the same input, so machine load
affects them alike; the ratio of the medians is printed.

Example::

    python benchmarks/ddc_speed.py --batch 8 --channels 64 --size 64
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

from mmrskd.models.layers.ddc import DynamicDirectionalConv2d


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--size', type=int, default=64, help='H = W')
    parser.add_argument('--num-base-kernels', type=int, default=1)
    parser.add_argument('--num-triangular-kernels', type=int, default=0)
    parser.add_argument(
        '--angles', type=float, nargs='+', default=[0, 90, 180, 270])
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch default)')
    args = parser.parse_args()
    if args.repeats < 10:
        parser.error('--repeats must be >= 10 for a stable median')
    return args


def step_time(layer: nn.Module, x: torch.Tensor) -> float:
    """Seconds for one forward + backward."""
    start = time.perf_counter()
    layer(x).sum().backward()
    return time.perf_counter() - start


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    channels = args.channels
    plain = nn.Conv2d(channels, channels, 3, padding=1)
    ddc = DynamicDirectionalConv2d(
        channels,
        channels,
        3,
        padding=1,
        num_base_kernels=args.num_base_kernels,
        num_triangular_kernels=args.num_triangular_kernels,
        angles=args.angles)
    x = torch.randn(args.batch, channels, args.size, args.size,
                    requires_grad=True)

    times = {'conv': [], 'ddc': []}
    for index in range(args.warmup + args.repeats):
        for name, layer in (('conv', plain), ('ddc', ddc)):
            elapsed = step_time(layer, x)
            if index >= args.warmup:
                times[name].append(elapsed)
    conv_ms = statistics.median(times['conv']) * 1e3
    ddc_ms = statistics.median(times['ddc']) * 1e3
    print(f'input {tuple(x.shape)}, {ddc.num_kernels} kernels, '
          f'{torch.get_num_threads()} threads, median of {args.repeats}')
    print(f'conv3x3 fwd+bwd: {conv_ms:.2f} ms')
    print(f'DDC     fwd+bwd: {ddc_ms:.2f} ms')
    print(f'ratio DDC / conv3x3: {ddc_ms / conv_ms:.2f}x')


if __name__ == '__main__':
    main()
