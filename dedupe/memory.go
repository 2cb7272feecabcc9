package dedupe

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is a Store in memory, bounded in size and with expiry: it holds at
// most max entries, forgetting the oldest first, and forgets entries older
// than ttl. It is safe for concurrent use.
type Memory struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	order   *list.List // of *memEntry, oldest first
	entries map[memKey]*list.Element
}

type memKey struct{ group, id string }

type memEntry struct {
	key memKey
	at  time.Time
}

// NewMemory returns a Memory holding at most max entries for at most ttl
// (ttl <= 0: no expiry).
func NewMemory(max int, ttl time.Duration) *Memory {
	return &Memory{max: max, ttl: ttl, now: time.Now, order: list.New(), entries: map[memKey]*list.Element{}}
}

// Seen implements Store.
func (m *Memory) Seen(_ context.Context, group, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireLocked()
	_, ok := m.entries[memKey{group, id}]
	return ok, nil
}

// Record implements Store.
func (m *Memory) Record(_ context.Context, group, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{group, id}
	if e, ok := m.entries[k]; ok {
		e.Value.(*memEntry).at = m.now()
		m.order.MoveToBack(e)
	} else {
		m.entries[k] = m.order.PushBack(&memEntry{key: k, at: m.now()})
	}
	for m.order.Len() > m.max {
		m.removeLocked(m.order.Front())
	}
	m.expireLocked()
	return nil
}

// Len returns the number of entries held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireLocked()
	return m.order.Len()
}

func (m *Memory) expireLocked() {
	if m.ttl <= 0 {
		return
	}
	cut := m.now().Add(-m.ttl)
	for e := m.order.Front(); e != nil && !e.Value.(*memEntry).at.After(cut); e = m.order.Front() {
		m.removeLocked(e)
	}
}

func (m *Memory) removeLocked(e *list.Element) {
	delete(m.entries, e.Value.(*memEntry).key)
	m.order.Remove(e)
}
