// Package web holds Bulb's browser pages: the student page (index.html), the
// host page (host.html), the presenter screen for the projector (present.html)
// and the fairness dashboard (admin.html), with the stylesheet, scripts and
// vendored libraries they load.
//
// The pages are plain HTML, CSS and JavaScript modules with no build step.
// They speak only the contract of docs/protocol.md and expect the server to
// serve index.html at /, host.html at /host, present.html at /present,
// admin.html at /admin and every other file of FS under /static/.
package web
