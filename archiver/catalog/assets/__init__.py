"""The catalog page's static parts: `catalog.html`, `catalog.css` and `catalog.js`.

`archiver.catalog.build` inlines the CSS and JS into the page it writes, so the archive holds one
self-contained `index.html` beside its data script. They are package data, not code.
"""
