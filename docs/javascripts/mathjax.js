// MathJax 3 configuration, read before tex-svg.js loads. It typesets only what pymdownx.arithmatex marked (the
// docstrings' and pages' LaTeX, as \( \) and \[ \]) and the notebooks' rendered Markdown cells ($ and $$); code
// blocks and everything else are left alone. An element with any class is skipped unless it is one of those two,
// and an element without a class is treated as its parent (".+": MathJax's usual ".*|" would also skip the
// notebook cells' plain <p> children).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".+",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown",
  },
  svg: { fontCache: "global" },
};
