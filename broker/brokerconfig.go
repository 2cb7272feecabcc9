package broker

import (
	"fmt"
	"maps"
	"slices"
)

// findBrokerDef returns the topic config whose broker-wide default is
// named name (log.retention.ms, message.max.bytes, ...).
func findBrokerDef(name string) (configDef, bool) {
	for _, d := range topicConfigDefs {
		if d.broker == name && name != "" {
			return d, true
		}
	}
	return configDef{}, false
}

// setBrokerConfig applies update to the dynamic broker configs of node 0
// (or, with cluster, the cluster-wide defaults): each value is validated as
// the topic config it is the default of, every topic's config is rebuilt
// with the new defaults, and the result is persisted in the metadata file
// and applied to every partition log before it returns.
func (b *Broker) setBrokerConfig(cluster bool, update func(map[string]string, configLookup) (map[string]string, error), validateOnly bool) error {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	set := b.topics()
	dyn := b.dyn()
	cur := dyn.node
	if cluster {
		cur = dyn.cluster
	}
	lookup := func(name string) (configDef, string, error) {
		d, ok := findBrokerDef(name)
		switch {
		case ok && d.dynamic:
			return d, b.brokerChain(d, dyn)[0].value, nil
		case ok || slices.ContainsFunc(b.brokerConfigs(), func(c brokerConfig) bool { return c.name == name }):
			return d, "", fmt.Errorf("broker config %s is read-only: it comes from `spool serve` flags", name)
		}
		return d, "", fmt.Errorf("unknown or unsupported broker config %q", name)
	}
	values := maps.Clone(cur)
	if values == nil {
		values = map[string]string{}
	}
	values, err := update(values, lookup)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		d, _ := findBrokerDef(name)
		if err := d.apply(&topicConfig{}, values[name]); err != nil {
			return fmt.Errorf("%w: invalid value %q for broker config %s: %v", errInvalidConfig, values[name], name, err)
		}
	}
	if len(values) == 0 {
		values = nil
	}
	nd := &dynamicConfigs{node: dyn.node, cluster: dyn.cluster}
	if cluster {
		nd.cluster = values
	} else {
		nd.node = values
	}
	ts := make([]*topic, 0, len(set.byName))
	for _, t := range set.sorted() {
		cfg, err := b.buildTopicConfigWith(nd, t.cfg.overrides)
		if err != nil {
			return fmt.Errorf("%w: topic %s: %v", errInvalidConfig, t.name, err)
		}
		nt := *t
		nt.cfg = cfg
		ts = append(ts, &nt)
	}
	if validateOnly {
		return nil
	}
	next := newTopicSet(ts)
	next.dyn = nd
	if err := b.writeMeta(b.clusterID, next); err != nil {
		return err
	}
	b.topicSet.Store(next)
	for _, t := range ts {
		for _, l := range t.parts {
			l.SetConfig(t.cfg.log)
		}
	}
	return nil
}
