package rafthttp

import (
	"net/url"
	"sync"
)

// urlPicker chooses which of a peer's URLs to use: the same one until it
// fails, then the next. Safe for concurrent use.
type urlPicker struct {
	mu     sync.Mutex // protects urls and picked
	urls   []url.URL  // never empty
	picked int
}

func newURLPicker(urls []url.URL) *urlPicker { return &urlPicker{urls: urls} }

func (p *urlPicker) update(urls []url.URL) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.urls, p.picked = urls, 0
}

func (p *urlPicker) pick() url.URL {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.urls[p.picked]
}

// unreachable moves to the next URL if u is still the picked one.
func (p *urlPicker) unreachable(u url.URL) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.urls[p.picked] == u {
		p.picked = (p.picked + 1) % len(p.urls)
	}
}
