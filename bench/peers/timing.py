"""CUDA-event timing shared by the peer scripts.

time_ms: the median of `repeats` calls, each between two events and synchronized after it. The GPU
is idle when the start event is recorded, so the time holds the host's work before the first
launch (Python checks, allocation, launch calls): right for kernels of milliseconds, wrong for
decode, where that host work is as long as the kernel.

device_ms: the GPU time of one call with no host time in it, as nvbench's "blocking kernel" does:
a spin kernel (torch.cuda._sleep) holds the stream while the host queues every timed call, so
the GPU then runs them back to back and each call's event pair spans only its own kernels and
the gaps between them. Before each call a read of twice the L2 size (outside the events) evicts
what the previous call left there, so every call starts from DRAM. It also returns the host time
per call (measured while the GPU was still spinning, so no back-pressure from the GPU in it) and
whether the queue ran dry (an op that synchronizes inside, or a spin too short): then the device
time may hold host gaps, and the caller says so.
"""
import functools
import statistics
import time
from typing import NamedTuple

import torch


def time_ms(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


class DeviceTiming(NamedTuple):
    device_ms: float  # median GPU time of one call (its kernels and the gaps between them)
    host_us: float  # host time per call: Python, checks, allocation, launches
    drained: bool  # the GPU caught up with the host during the run: device_ms may hold host time


@functools.cache
def _spin_cycles_per_ms() -> float:
    cycles = 20_000_000
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(cycles // 10)  # clocks up before the measured spin
    start.record()
    torch.cuda._sleep(cycles)
    stop.record()
    stop.synchronize()
    return cycles / start.elapsed_time(stop)


@functools.cache
def _l2_evictor() -> torch.Tensor:
    """Twice the L2 size of the current device (64 MiB assumed where torch does not say)."""
    l2_bytes = getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "L2_cache_size", 0)
    return torch.ones(max(2 * (l2_bytes or 64 << 20), 1 << 20) // 4, dtype=torch.int32, device="cuda")


def _queued_run(fn, repeats, spin_ms) -> DeviceTiming:
    evictor = _l2_evictor()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
    spin_done = torch.cuda.Event()
    torch.cuda.synchronize()
    torch.cuda._sleep(int(spin_ms * _spin_cycles_per_ms()))
    spin_done.record()
    host_s = 0.0
    for start, stop in events:
        evictor.sum()
        start.record()
        begin = time.perf_counter()
        fn()
        host_s += time.perf_counter() - begin
        stop.record()
    drained = spin_done.query()  # the spin ended before the last call was queued
    torch.cuda.synchronize()
    times = [start.elapsed_time(stop) for start, stop in events]
    return DeviceTiming(statistics.median(times), host_s / repeats * 1e6, drained)


def device_ms(fn, repeats, warmup=3) -> DeviceTiming:
    """GPU time of one call of fn, host excluded (module docstring). One retry with a 4x longer
    spin when the queue ran dry; still dry (fn synchronizes inside) is returned as drained."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    begin = time.perf_counter()
    fn()  # not synchronized: the host time of one call, to size the spin
    host_ms = (time.perf_counter() - begin) * 1e3
    torch.cuda.synchronize()
    spin_ms = 2.0 * repeats * (host_ms + 0.05) + 1.0
    timing = _queued_run(fn, repeats, spin_ms)
    if timing.drained:
        timing = _queued_run(fn, repeats, 4 * spin_ms)
    return timing


def loop_us(fn, calls=100):
    """Per-call time of `calls` back-to-back calls without a spin, as a decode loop without CUDA
    graphs pays it: about max(host time, device time) per call."""
    fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / calls * 1e3


def graph_device_ms(fn, repeats):
    """device_ms of fn captured once in a CUDA graph and replayed: no Python and no launch calls
    at all, a cross-check that device_ms holds only the call's kernels. Raises what the capture
    raises (an op that synchronizes or allocates outside PyTorch cannot be captured)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graphs asks
        fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return device_ms(graph.replay, repeats).device_ms
