/* Not yet implemented: closes the connection like an unsupported request. */
#include "server/internal.h"

void handle_incremental_alter_configs(struct request *req) { request_malformed(req); }
