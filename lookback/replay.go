package lookback

import (
	"context"
	"net/http"

	"github.com/spoolmq/spool/internal/httpapi"
)

type replayer struct{}

func newReplayer(*Service) *replayer     { return &replayer{} }
func (*replayer) resume(context.Context) {}
func (*replayer) wait()                  {}

func (s *Service) apiReplayStart(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteProblem(w, http.StatusNotImplemented, "replays are not built yet")
}
func (s *Service) apiReplayList(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteProblem(w, http.StatusNotImplemented, "replays are not built yet")
}
func (s *Service) apiReplayGet(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteProblem(w, http.StatusNotImplemented, "replays are not built yet")
}
func (s *Service) apiReplayCancel(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteProblem(w, http.StatusNotImplemented, "replays are not built yet")
}
