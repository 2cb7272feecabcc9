package gateway_test

import "github.com/spoolmq/spool/gateway"

type gatewayConfig = gateway.Config
