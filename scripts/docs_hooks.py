"""MkDocs hooks of the documentation site (mkdocs.yml, `hooks:`).

- MathJax is copied from the installed django-static-mathjax package into the site, so equations typeset offline
  (a cluster's intranet, the browser test) as well as online.
- The GPU verification kit's report, `docs/gpu.md`, joins the Results section once `make gpu-check` has written it.
"""

import importlib.util
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File


MATHJAX_SCRIPT = "assets/javascripts/mathjax/tex-svg.js"
GPU_PAGE = "gpu.md"


def _mathjax_source() -> Path:
    spec = importlib.util.find_spec("mathjax")
    source = Path(spec.submodule_search_locations[0]) / "static" / "mathjax" / "es5" / "tex-svg.js" if spec else None
    if source is None or not source.is_file():
        raise PluginError("MathJax not found: install the docs extra (pip install -e '.[docs]', or `make docs`).")
    return source


def on_config(config):
    if (Path(config["docs_dir"]) / GPU_PAGE).is_file():
        for section in config["nav"]:
            if isinstance(section, dict) and "Results" in section:
                section["Results"].append({"GPU verification run": GPU_PAGE})
    return config


def on_files(files, config):
    files.append(File.generated(config, MATHJAX_SCRIPT, abs_src_path=str(_mathjax_source())))
    return files
