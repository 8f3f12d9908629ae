"""Host facts that benchmark JSON carries (`openended.hostinfo`)."""

from __future__ import annotations

from openended.hostinfo import cpu_facts, parse_cpuinfo

_X86_AVX512 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq
"""

_ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32
CPU implementer\t: 0x41
"""


def test_widest_vector_isa_and_model_are_read() -> None:
    assert parse_cpuinfo(_X86_AVX512) == {
        "cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
        "cpu_vector_isa": "avx512",
    }
    assert parse_cpuinfo(_ARM)["cpu_vector_isa"] == "asimd"
    assert parse_cpuinfo("")["cpu_vector_isa"] == "unknown"


def test_cpu_facts_of_this_machine_are_complete() -> None:
    facts = cpu_facts()
    assert set(facts) == {"cpu_model", "cpu_vector_isa", "cpus"}
    assert facts["cpu_model"] and facts["cpu_vector_isa"]
    assert isinstance(facts["cpus"], int) and facts["cpus"] >= 1
