package broker

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// handlerGroup runs goroutines for a request handler, like sync.WaitGroup's
// Go, but a panic in one of them does not take the broker down: it is
// recovered there and raised again by Wait, on the handler's goroutine,
// where conn.handle recovers it as it does any handler panic (the
// connection closes, the panic is logged with the goroutine's stack and
// counted, the broker and every other connection carry on).
type handlerGroup struct {
	wg sync.WaitGroup
	mu sync.Mutex
	p  any
	st []byte
}

// Go runs fn on a new goroutine.
func (g *handlerGroup) Go(fn func()) {
	g.wg.Go(func() {
		defer func() {
			if r := recover(); r != nil {
				g.mu.Lock()
				if g.p == nil {
					g.p, g.st = r, debug.Stack()
				}
				g.mu.Unlock()
			}
		}()
		fn()
	})
}

// Wait waits for every goroutine, then panics with the first one's panic.
func (g *handlerGroup) Wait() {
	g.wg.Wait()
	if g.p != nil {
		panic(fmt.Sprintf("%v (in a goroutine of the handler; its stack:\n%s)", g.p, g.st))
	}
}
