package web

import "embed"

// FS holds the pages and their assets: index.html (student), host.html, present.html (the projector),
// admin.html, and the files they load.
//
//go:embed *.html *.css *.js vendor
var FS embed.FS
