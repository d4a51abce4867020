/* SPDX-License-Identifier: Apache-2.0 */
/* The one value of routing_vxlan_cfg, shared by the stage and the module. */
#ifndef ROUTING_VXLAN_CONFIG_H
#define ROUTING_VXLAN_CONFIG_H

#include <linux/types.h>

struct routing_vxlan_config {
	__u32 ifindex; /* the VXLAN device packets are redirected to */
};

#endif /* ROUTING_VXLAN_CONFIG_H */
