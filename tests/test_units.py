"""spikeport.units: the one number formatter of the command line and the reports."""
import pytest

from spikeport.units import si, si_range


@pytest.mark.parametrize("value, unit, text", [
    (0.0123, "J", "12.3 mJ"), (57.36e-3, "J", "57.36 mJ"), (1.2, "W", "1.2 W"), (3.2e-7, "J", "320 nJ"),
    (4.2e-13, "J", "0.42 pJ"), (1500.0, "J", "1500 J"), (0.0, "W", "0 W"), (-2e-6, "s", "-2 us"),
    (0.000999999, "J", "1 mJ"),  # rounds up into the next prefix, never "1000 uJ"
])
def test_si_picks_the_prefix_that_keeps_the_mantissa_below_1000(value, unit, text):
    assert si(value, unit) == text


def test_si_micro_sign_and_ranges():
    assert si(5e-6, "J", micro="µ") == "5 µJ"
    assert si_range(0.0164, 0.0238, "J") == "[16.4-23.8 mJ]"
    assert si_range(2.83e-4, 7.5e-4, "J") == "[283-750 uJ]"


def test_a_range_keeps_its_low_end_exact_when_the_high_end_rounds():
    from spikeport.units import count

    assert si_range(0.016, 0.023849, "J") == "[16-23.8 mJ]"   # 16 mJ exactly, not 16.0x from a rounded scale
    assert count(1, "chip") == "1 chip" and count(4, "chip") == "4 chips" and count(1200, "core") == "1,200 cores"
