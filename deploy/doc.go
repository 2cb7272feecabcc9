// Package deploy holds what runs Spool in production next to the binary:
// the Grafana dashboard (grafana/spool.json) and the Prometheus alert rules
// (prometheus/alerts.yml, unit-tested by prometheus/alerts_test.yml). Its
// tests check the rules with promtool and that every metric the rules and
// the dashboard use is one Spool exports and docs/metrics.md documents.
package deploy
