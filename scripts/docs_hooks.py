"""MkDocs hooks of the documentation site (mkdocs.yml, `hooks:`).

- The configuration reference is generated from the dataclasses themselves: a page line
  `<!-- fields: lambda_trl.config.LambdaGRPOConfig -->` becomes a table of the fields that class itself defines
  (name, type, default, choices and help from the field metadata), so the tables cannot drift from the code.
- A page line `<!-- include: recipes/README.md -->` becomes that file of the repository, its links into docs/
  (`../docs/graders.md`, right on GitHub) made relative to the site's pages, so the file has one source.
- MathJax is copied from the installed django-static-mathjax package into the site, so equations typeset offline
  (a cluster's intranet, the browser test) as well as online.
- The GPU verification kit's report, `docs/gpu.md`, joins the Results section once `make gpu-check` has written it.
"""

import dataclasses
import importlib
import importlib.util
import re
import types
from fractions import Fraction
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File


MATHJAX_SCRIPT = "assets/javascripts/mathjax/tex-svg.js"
GPU_PAGE = "gpu.md"
FIELDS_MARKER = re.compile(r"^<!-- fields: ([\w.]+) -->$", re.MULTILINE)
INCLUDE_MARKER = re.compile(r"^<!-- include: ([\w./-]+) -->$", re.MULTILINE)


def _type_name(annotation) -> str:
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _value(value) -> str:
    if isinstance(value, float) and len(repr(value)) > 8:
        fraction = Fraction(value).limit_denominator(100)
        if float(fraction) == value:
            return f"`{fraction}`"  # 1/9 rather than 0.1111111111111111
    return f"`{value!r}`".replace("'", '"')


def _default(field: dataclasses.Field) -> str:
    return _value(field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default)


def _cell(text: str) -> str:
    # Markdown table cell: a pipe would end the cell, `<` open an HTML tag, `*` start emphasis.
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace("*", "\\*")


def fields_table(dotted: str, anchors: set[str]) -> str:
    """
    The fields `dotted` (module.Class) defines itself, as a Markdown table; inherited ones are left out. Each row is
    an anchor named after the field (`configuration.md#reducer`), or `Class.field` where the page already has one.
    """
    module_name, _, class_name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    own = cls.__dict__.get("__annotations__", {})
    rows = ["| field | type = default | meaning |", "|---|---|---|"]
    for field in dataclasses.fields(cls):
        if field.name not in own:
            continue
        if "help" not in field.metadata:
            raise PluginError(f"{dotted}.{field.name} has no `help` metadata for the configuration reference.")
        anchor = field.name if field.name not in anchors else f"{class_name}.{field.name}"
        anchors.add(anchor)
        meaning = _cell(field.metadata["help"])
        if "choices" in field.metadata:
            meaning += " Choices: " + ", ".join(_value(choice) for choice in field.metadata["choices"]) + "."
        rows.append(
            f'| <span id="{anchor}"></span>`{field.name}` | {_cell(_type_name(field.type))} = {_default(field)} | '
            f"{meaning} |"
        )
    return "\n".join(rows)


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


def included(path: str, config) -> str:
    """A repository file (outside docs/) for a page at the top of the site: `../docs/X` links become `X`."""
    source = Path(config["docs_dir"]).parent / path
    if not source.is_file():
        raise PluginError(f"include: {path} does not exist.")
    return source.read_text().replace("](../docs/", "](")


def on_page_markdown(markdown, page, config, files):
    markdown = INCLUDE_MARKER.sub(lambda match: included(match.group(1), config), markdown)
    anchors = set()
    return FIELDS_MARKER.sub(lambda match: fields_table(match.group(1), anchors), markdown)


def on_files(files, config):
    files.append(File.generated(config, MATHJAX_SCRIPT, abs_src_path=str(_mathjax_source())))
    return files
