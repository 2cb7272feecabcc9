// Command outbox is a runnable example of the transactional outbox: an
// order service whose HTTP "place order" handler writes the order row and
// its order.placed event in one SQLite transaction, a relay that publishes
// the event to Kafka (or Spool), and a consumer that handles it exactly
// once (its effect, a shipment row, is recorded with the event id in one
// transaction through dedupe.SQL).
//
//	go run ./cmd/spool serve &                 # a broker on 127.0.0.1:9092
//	go run ./examples/outbox                   # the service on 127.0.0.1:8090
//	curl -s -XPOST localhost:8090/orders -d '{"customer":"c-1","item":"book","quantity":2}'
//	curl -s localhost:8090/orders/<id>         # "shipped": true once the consumer handled it
//	go run ./cmd/spool outbox status --db sqlite:outbox-example.db
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/dedupe"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/outbox"
)

// Config configures the example service.
type Config struct {
	DB      string   // SQLite file; default outbox-example.db
	Brokers []string // default 127.0.0.1:9092
	HTTP    string   // listen address; default 127.0.0.1:8090
	Logger  *slog.Logger
}

// Order is the order row and the order.placed payload.
type Order struct {
	ID       string    `json:"id"`
	Customer string    `json:"customer"`
	Item     string    `json:"item"`
	Quantity int       `json:"quantity"`
	Placed   time.Time `json:"placed"`
	Shipped  bool      `json:"shipped"`
}

const topic = "orders"

// Service is the running example: HTTP handler, relay and consumer.
type Service struct {
	db    *sql.DB
	relay *outbox.Relay
	agent *agent.Agent
	log   *slog.Logger
	done  chan error
	stop  context.CancelFunc
}

// Start opens the database, creates its tables, and starts the relay and
// the consumer.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DB == "" {
		cfg.DB = "outbox-example.db"
	}
	if len(cfg.Brokers) == 0 {
		cfg.Brokers = []string{"127.0.0.1:9092"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// WAL and a busy timeout let the relay, the consumer and the handlers
	// share the file; one connection serializes them in this process.
	db, err := sql.Open("sqlite", "file:"+cfg.DB+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	s := &Service{db: db, log: cfg.Logger, done: make(chan error, 1)}
	if err := s.setup(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.relay, err = outbox.New(outbox.Config{DB: db, Brokers: cfg.Brokers, Logger: cfg.Logger})
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := s.relay.Start(ctx); err != nil {
		db.Close()
		return nil, err
	}
	store, err := dedupe.NewSQL(db, dedupe.SQLite, "")
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := store.Init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.agent, err = agent.New("shipping", []string{topic}, agent.WithBrokers(cfg.Brokers...),
		agent.WithClientOptions(kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
		agent.WithHandler("order.placed", store.Handle(s.ship)))
	if err != nil {
		s.Close()
		return nil, err
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	go func() { s.done <- s.agent.Run(actx) }()
	return s, nil
}

func (s *Service) setup(ctx context.Context) error {
	if err := outbox.Migrate(ctx, s.db); err != nil {
		return err
	}
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer TEXT NOT NULL, item TEXT NOT NULL,
			quantity INTEGER NOT NULL, placed_at INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS shipments (order_id TEXT PRIMARY KEY, event_id TEXT NOT NULL)`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
	}
	return nil
}

// Close stops the consumer and the relay and closes the database.
func (s *Service) Close() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	if s.relay != nil {
		s.relay.Close()
	}
	s.db.Close()
}

// Handler serves POST /orders and GET /orders/{id}.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", s.placeOrder)
	mux.HandleFunc("GET /orders/{id}", s.getOrder)
	return mux
}

// placeOrder writes the order and its event in one transaction.
func (s *Service) placeOrder(w http.ResponseWriter, r *http.Request) {
	var o Order
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&o); err != nil {
		problem(w, http.StatusBadRequest, "the body must be a JSON order: "+err.Error())
		return
	}
	if o.Customer == "" || o.Item == "" || o.Quantity < 1 {
		problem(w, http.StatusBadRequest, "an order needs a customer, an item and a quantity of at least 1")
		return
	}
	o.ID, o.Placed = uuid.NewString(), time.Now().UTC()
	ctx := r.Context()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "database unavailable: "+err.Error())
		return
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id, customer, item, quantity, placed_at) VALUES (?, ?, ?, ?, ?)",
		o.ID, o.Customer, o.Item, o.Quantity, o.Placed.UnixMilli()); err != nil {
		problem(w, http.StatusInternalServerError, "store the order: "+err.Error())
		return
	}
	ev, err := event.New("order.placed", event.JSON, o)
	if err != nil {
		problem(w, http.StatusInternalServerError, err.Error())
		return
	}
	// The key keeps one customer's events in order.
	ev.Source, ev.Key, ev.Subject = "/examples/outbox", []byte(o.Customer), o.ID
	if err := outbox.Add(ctx, tx, *ev, outbox.Topic(topic)); err != nil {
		problem(w, http.StatusInternalServerError, "queue the event: "+err.Error())
		return
	}
	if err := tx.Commit(); err != nil {
		problem(w, http.StatusInternalServerError, "commit: "+err.Error())
		return
	}
	s.relay.Wake() // same process: publish now rather than at the next poll
	w.Header().Set("Location", "/orders/"+o.ID)
	writeJSON(w, http.StatusCreated, o)
}

func (s *Service) getOrder(w http.ResponseWriter, r *http.Request) {
	var o Order
	var placed int64
	err := s.db.QueryRowContext(r.Context(), `SELECT id, customer, item, quantity, placed_at,
		EXISTS (SELECT 1 FROM shipments WHERE order_id = orders.id) FROM orders WHERE id = ?`, r.PathValue("id")).
		Scan(&o.ID, &o.Customer, &o.Item, &o.Quantity, &placed, &o.Shipped)
	if errors.Is(err, sql.ErrNoRows) {
		problem(w, http.StatusNotFound, "no order "+r.PathValue("id"))
		return
	}
	if err != nil {
		problem(w, http.StatusInternalServerError, err.Error())
		return
	}
	o.Placed = time.UnixMilli(placed).UTC()
	writeJSON(w, http.StatusOK, o)
}

// ship is the consumer: it records a shipment in the transaction that
// dedupe.SQL records the event id in, so a redelivered event ships nothing.
func (s *Service) ship(ctx context.Context, tx *sql.Tx, m *agent.Message) error {
	o, err := event.Decode[Order](m.Event)
	if err != nil {
		return agent.DeadLetter(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO shipments (order_id, event_id) VALUES (?, ?)", o.ID, m.ID); err != nil {
		return agent.Retry(err)
	}
	s.log.Info("shipping order", "order", o.ID, "customer", o.Customer, "item", o.Item, "event", m.ID)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// problem answers with an RFC 9457 problem+json body.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
}

func main() {
	var cfg Config
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka or Spool seed broker")
	flag.StringVar(&cfg.DB, "db", "outbox-example.db", "SQLite database file")
	flag.StringVar(&cfg.HTTP, "http", "127.0.0.1:8090", "HTTP listen address")
	flag.Parse()
	cfg.Brokers = []string{*brokers}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "outbox example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	slog.Info("order service listening", "addr", ln.Addr().String(), "brokers", cfg.Brokers)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
