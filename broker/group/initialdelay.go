package group

import "time"

// The initial rebalance delay (group.initial.rebalance.delay.ms, Kafka's
// InitialDelayedJoin): when an empty group gets its first member, the
// rebalance does not complete as soon as the members it knows have joined
// but waits InitialRebalanceDelay; if another member joined meanwhile it
// waits again (at most the delay, and never past the group's rebalance
// timeout in total), then completes with whoever is there. Without it,
// consumers that subscribe a few milliseconds apart get a first generation
// in which the first takes every partition, then a second rebalance.

// startInitialDelay starts the delay for a group leaving Empty whose
// rebalance timeout is timeout. The caller is the coordinator loop.
func (c *Coordinator) startInitialDelay(g *group, timeout time.Duration) {
	d := c.cfg.InitialRebalanceDelay
	if d <= 0 {
		return
	}
	d = min(d, timeout)
	g.delaying, g.newMember = true, false
	c.armInitialDelay(g, d, max(timeout-d, 0))
}

func (c *Coordinator) armInitialDelay(g *group, d, remaining time.Duration) {
	g.delaySeq++
	seq := g.delaySeq
	g.delayTimer = time.AfterFunc(d, func() {
		c.post(func() {
			if g.delaySeq == seq && g.delaying && c.groups[g.name] == g {
				c.initialDelayExpired(g, remaining)
			}
		})
	})
}

// initialDelayExpired extends the delay if a member joined during it and
// time remains; otherwise it ends the delay and completes the join if every
// member is in.
func (c *Coordinator) initialDelayExpired(g *group, remaining time.Duration) {
	if g.newMember && remaining > 0 {
		g.newMember = false
		d := min(c.cfg.InitialRebalanceDelay, remaining)
		c.armInitialDelay(g, d, remaining-d)
		return
	}
	g.stopInitialDelay()
	c.maybeCompleteJoin(g)
}

func (g *group) stopInitialDelay() {
	g.delaying, g.newMember = false, false
	g.delaySeq++
	if g.delayTimer != nil {
		g.delayTimer.Stop()
		g.delayTimer = nil
	}
}
