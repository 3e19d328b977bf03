"""Every HTML report rendered in a real browser (Debian's chromium, headless; `make test` installs it).

Each report is written as the commands write it, opened from a file:// URL, and checked three ways:
its DOM after rendering holds every plot the report promises, each an <svg> with drawn marks; a
screenshot of the page is not blank; and the browser's own network log shows no request made by
the page (the browser's background requests, to its update and account services, are told apart
by their network isolation key: a page's requests carry the page's site, file://).
"""
import html.parser
import json
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser installs it as "
                                                         "root); the reports' browser tests need it")

# the plots each report must hold
EXPECTED = {
    "power": {"energy-per-chip", "chips-side-by-side", "layer-energy-loihi", "layer-energy-spinnaker"},
    "deploy": {"layer-mapping", "energy-per-chip", "layer-energy", "layer-activity"},
    "simulate": {"accuracy-vs-steps", "firing-rates", "layer-activity"},
    "validate": {"accuracy-vs-steps", "layer-agreement", "firing-rates"},
    "sweep": {"pareto-loihi", "pareto-spinnaker", "pareto-cpu"},
}


def render(page, tmp_path, name):
    """(DOM after rendering, screenshot path, the page's own network requests) of ``page`` in chromium."""
    shot, netlog = tmp_path / f"{name}.png", tmp_path / f"{name}-net.json"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / ('profile-' + name)}", "--window-size=1200,1600"]
    dom = subprocess.run(common + [f"--log-net-log={netlog}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    snap = subprocess.run(common + [f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert snap.returncode == 0 and shot.exists(), snap.stderr[-2000:]
    return dom.stdout, shot, page_requests(netlog)


def page_requests(netlog) -> list:
    """URLs the page itself requested, from chromium's net log."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start and "file://" in e.get("params", {}).get("network_isolation_key", "")]


class Plots(html.parser.HTMLParser):
    """Each <figure class="plot" data-plot="NAME">: the <svg> size and its drawn marks (path, rect, use, text)."""

    def __init__(self):
        super().__init__()
        self.plots, self.current, self.depth = {}, None, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "figure" and a.get("class") == "plot":
            self.current, self.depth = a["data-plot"], 0
            self.plots[self.current] = {"svg": None, "marks": 0}
        elif self.current is not None:
            if tag == "figure":
                self.depth += 1
            if tag == "svg" and self.plots[self.current]["svg"] is None:
                self.plots[self.current]["svg"] = (a.get("width", ""), a.get("height", ""))
            if tag in ("path", "rect", "use", "polyline", "line"):
                self.plots[self.current]["marks"] += 1

    def handle_endtag(self, tag):
        if tag == "figure" and self.current is not None:
            if self.depth == 0:
                self.current = None
            else:
                self.depth -= 1


def check_page(page, tmp_path, name):
    dom, shot, requests = render(page, tmp_path, name)
    parser = Plots()
    parser.feed(dom)
    assert EXPECTED[name] <= set(parser.plots), (name, sorted(parser.plots))
    for plot, info in parser.plots.items():
        assert info["svg"] is not None, (name, plot)
        width, height = (float(v.rstrip("pt") or 0) for v in info["svg"])
        assert width > 50 and height > 50, (name, plot, info)
        assert info["marks"] >= 10, (name, plot, info)  # axes, ticks and the bars or lines themselves
    assert requests == [], (name, requests)
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    ink = (pixels.min(axis=2) < 0.9).mean()  # the share of pixels that are not (near) white
    assert pixels.std() > 0.05 and ink > 0.02, (name, float(pixels.std()), float(ink))
    return parser.plots


@pytest.fixture(scope="module")
def reports(digits_conv_snn, tmp_path_factory):
    from spikeport.api import simulate, validate
    from spikeport.deploy.pipeline import deploy, power
    from spikeport.deploy.report import power_html, simulate_html, validate_html

    net = digits_conv_snn[0]
    out = tmp_path_factory.mktemp("reports")
    pages = {}
    result = power(net, ["loihi", "spinnaker", "loihi2", "speck"], samples=10, steps=16)
    pages["power"] = out / "power.html"
    pages["power"].write_text(power_html(result))
    deploy(net, "loihi", samples=10, steps=16, out=out / "loihi")
    pages["deploy"] = out / "loihi" / "report.html"
    from spikeport.datasets import load_dataset

    ds = load_dataset("digits")
    x, y = ds.x("test")[:40], ds.y("test")[:40]
    sim = simulate(net, (x, y), 16, checkpoints=[1, 2, 4, 8, 16])
    pages["simulate"] = out / "simulate.html"
    pages["simulate"].write_text(simulate_html(sim.report()))
    val = validate(net, "digits", 16, samples=20, backend="reference")
    pages["validate"] = out / "validate.html"
    pages["validate"].write_text(validate_html(val.report()))
    from spikeport.ir import save_network
    from spikeport.sweeps import load_sweep, run_sweep

    save_network(net, out / "net.spk")
    (out / "sweep.toml").write_text('[sweep]\nnetworks = ["net.spk"]\ndataset = "digits"\nsteps = [4, 8, 16]\n'
                                    'targets = ["loihi", "spinnaker", "cpu"]\nsamples = 20\n')
    pages["sweep"] = run_sweep(load_sweep(out / "sweep.toml"), out / "sweep").out / "report.html"
    return pages


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_report_renders_with_every_plot(reports, tmp_path, name):
    check_page(reports[name], tmp_path, name)


def test_the_checks_can_fail(tmp_path, reports):
    """The net-log check sees a request a page makes, and the DOM check sees a missing plot."""
    page = tmp_path / "probe.html"
    page.write_text(reports["simulate"].read_text().replace(
        "<body>", "<body><img src='http://127.0.0.1:9/probe.png' alt=''>", 1))
    _, _, requests = render(page, tmp_path, "probe")
    assert requests == ["http://127.0.0.1:9/probe.png"]
    bare = tmp_path / "bare.html"
    bare.write_text("<html><body><p>no plots</p></body></html>")
    with pytest.raises(AssertionError):
        check_page(bare, tmp_path, "simulate")


def test_unknown_energy_is_marked_not_zero(reports):
    text = reports["power"].read_text()
    # Loihi 2's per-op energies are unknown: its energies are lower bounds, and the plot names what is missing
    assert "≥ " in text and "synaptic operations" in text and "unknown" in text
    assert "does not fit" in text  # speck (analog input) is a row with its reason
