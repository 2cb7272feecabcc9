package lookback

import (
	"context"
	"errors"
)

// OpenPostgres is not built yet.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	return nil, errors.New("lookback: the PostgreSQL store is not built yet")
}
