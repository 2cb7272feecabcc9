package gateway

// RouteTable returns the method and pattern of every route the mux serves.
func RouteTable(g *Gateway) [][2]string {
	var out [][2]string
	for _, rt := range routes(g) {
		out = append(out, [2]string{rt.method, rt.pattern})
	}
	return out
}
