package producerprom

import "github.com/prometheus/client_golang/prometheus"

func (h *Hooks) SpooledVec() *prometheus.CounterVec   { return h.spooled }
func (h *Hooks) RefusedVec() *prometheus.CounterVec   { return h.refused }
func (h *Hooks) DeliveredCounter() prometheus.Counter { return h.delivered }
