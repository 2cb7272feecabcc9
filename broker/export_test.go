package broker

// SetTestHooks makes b call handling(apiKey) as each request's handler
// starts, and listenersClosed once Close has closed every listener (either
// may be nil), so tests wait on those moments instead of polling metrics.
func SetTestHooks(b *Broker, handling func(apiKey int16), listenersClosed func()) {
	b.hooks.Store(&testHooks{handling: handling, listenersClosed: listenersClosed})
}
