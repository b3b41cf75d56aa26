"""report.html in a real browser: every figure decodes, the verdict is on the first screen, and a screenshot is kept.

Runs Debian's Chromium headless (``apt-get install chromium``; .ci/run installs it where it can).  A copy
of the page gets a small script that checks, after load, that every <img> decoded (naturalWidth > 0)
and that the verdict's box ends within the first 1280 x 900 screen; ``--dump-dom`` prints the page
with the script's answer.  The screenshot of the real page is kept in the study folder
(``report.png``), and the folder is copied to ``runs/ci/report-study/`` in the checkout, which CI keeps.
"""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from regularkit.study import StudyConfig
from regularkit.study.pipeline import run_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,900", "--virtual-time-budget=5000"]

CHECK = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const v = document.getElementById("verdict");
  const box = v ? v.getBoundingClientRect() : null;
  const out = {images: imgs.length, decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
               verdict_bottom: box ? box.bottom : null, height: window.innerHeight};
  const pre = document.createElement("pre"); pre.id = "check"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(tmp_path, *args):
    profile = tmp_path / "profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_report_opens_in_chromium_with_every_figure_and_the_verdict_on_the_first_screen(tmp_path):
    out = tmp_path / "study"
    run_study(StudyConfig(recipes=("baseline", "l2", "dropout"), seeds=2, epochs=3, train_size=100, out=str(out)),
              progress=False)
    page = out / "report.html"
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    dom = chromium(tmp_path, "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr
    result = json.loads(dom.stdout.split('<pre id="check">', 1)[1].split("</pre>", 1)[0])
    figures = sorted(p.name for p in out.glob("*.png"))  # forest, both curves, gap, reliability
    assert len(figures) == 5 and result["images"] == len(figures) and result["decoded"] == result["images"]
    assert result["verdict_bottom"] is not None and result["verdict_bottom"] <= result["height"]
    shot = chromium(tmp_path, f"--screenshot={out / 'report.png'}", page.as_uri())
    assert shot.returncode == 0 and (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ci = Path(__file__).resolve().parents[2] / "runs" / "ci"  # runs/ is git-ignored: CI keeps it as an artifact
    ci.mkdir(parents=True, exist_ok=True)
    shutil.copytree(out, ci / "report-study", dirs_exist_ok=True)


WIDTH_CHECK = """<script>
window.addEventListener("load", () => {
  const out = {scroll: document.documentElement.scrollWidth, width: window.innerWidth};
  const pre = document.createElement("pre"); pre.id = "check"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def test_the_widest_table_fits_1400_pixels_without_horizontal_scroll(tmp_path):
    """Every column the study can show (ens, TTA, epochs, ECE, both sparsities), long recipe names and
    strengths, adjusted intervals: the page is no wider than a 1400-pixel window (issue 24)."""
    from regularkit.metrics.paired import Interval
    from regularkit.study.results.report import write_html
    from regularkit.study.results.summary import RecipeSummary

    stats = {"train_error": (0.0771, 0.0062), "val_error": (0.125, 0.0019), "test_error": (0.1368, 0.0005),
             "gap": (0.0598, 0.0062), "ensemble_test_error": (0.1291, 0.0), "tta_test_error": (0.1407, 0.0),
             "epochs_run": (26, 1.0), "ece": (0.0293, 0.001), "weight_sparsity": (0.3537, 0.01),
             "activation_sparsity": (0.5974, 0.01)}
    summaries = [RecipeSummary("baseline", "", [0, 1, 2], stats=dict(stats))]
    for name in ("dropout+max-norm", "batchnorm-no-dropout", "snapshot-ensemble", "label-smoothing"):
        summaries.append(RecipeSummary(name, "a description", [0, 1, 2], stats=dict(stats),
                                       strength={"field": "reg.ema_decay", "value": 0.99582, "tuned": True},
                                       deltas={"test_error": Interval(-0.1226, -0.2267, -0.0115, 3, "t", 0.995,
                                                                      sd=0.01, p_value=0.001, comparisons=4)}))
    page = write_html(summaries, [], tmp_path / "report.html", title="regularkit study: fashion-mnist, cnn",
                      config={}, environment={})
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", WIDTH_CHECK + "</body>"))
    profile = tmp_path / "profile"
    flags = [f for f in FLAGS if not f.startswith("--window-size")] + ["--window-size=1400,900"]
    dom = subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr
    result = json.loads(dom.stdout.split('<pre id="check">', 1)[1].split("</pre>", 1)[0])
    assert result["width"] == 1400 and result["scroll"] <= result["width"], result


@pytest.mark.slow
def test_a_regression_report_opens_with_its_four_figures_and_the_verdict_on_the_first_screen(tmp_path):
    import numpy as np
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    out = tmp_path / "study"
    run_study(StudyConfig(recipes=("baseline", "l2", "dropout"), seeds=2, epochs=3, out=str(out)),
              data=(d.data.astype(np.float32), d.target), progress=False)
    probe = tmp_path / "probe.html"
    probe.write_text((out / "report.html").read_text().replace("</body>", CHECK + "</body>"))
    dom = chromium(tmp_path, "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr
    result = json.loads(dom.stdout.split('<pre id="check">', 1)[1].split("</pre>", 1)[0])
    figures = sorted(p.name for p in out.glob("*.png"))
    assert figures == ["forest.png", "learning_curves.png", "predicted.png", "residuals.png"]
    assert result["images"] == 4 and result["decoded"] == 4
    assert result["verdict_bottom"] is not None and result["verdict_bottom"] <= result["height"]
