//go:build tools

package tools

import _ "go.temporal.io/sdk/contrib/tools/workflowcheck"
