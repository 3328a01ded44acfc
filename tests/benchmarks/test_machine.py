"""The machine record: CPU flags from /proc/cpuinfo text and GPU peak look-up."""

from __future__ import annotations

from benchmarks.machine import gpu_peak, parse_cpuinfo

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni amx_tile amx_int8 amx_bf16

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni amx_tile amx_int8 amx_bf16
"""


def test_parse_cpuinfo_reads_model_cpus_and_flags() -> None:
    info = parse_cpuinfo(CPUINFO)
    assert info["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert info["logical_cpus_listed"] == 2
    assert info["flags"]["avx512_vnni"] and info["flags"]["amx_int8"]
    assert not info["flags"]["avx_vnni"]
    assert info["int8_dot_product"] is True


def test_parse_cpuinfo_without_vnni_or_text() -> None:
    info = parse_cpuinfo("processor : 0\nflags : sse4_2 avx avx2 avx512f\n")
    assert info["int8_dot_product"] is False
    assert info["flags"]["avx512f"]
    empty = parse_cpuinfo("")
    assert empty["logical_cpus_listed"] == 0
    assert not any(empty["flags"].values())


def test_gpu_peaks_match_the_most_specific_name_first() -> None:
    pcie = gpu_peak("NVIDIA H100 PCIe")
    sxm = gpu_peak("NVIDIA H100 80GB HBM3")
    assert pcie is not None and sxm is not None
    assert pcie["bf16"] < sxm["bf16"]
    assert gpu_peak("NVIDIA H200") == sxm
    assert gpu_peak("Some Future GPU") is None
