/*
 * relay_bus: the cluster's events, dispatched (docs/cluster.md).
 *
 * relay_cluster carries JSON events between the nodes of a cluster on
 * one Redis channel and tells of leases this node lost; this layer, above
 * the sessions and assistance, hands each to the code it concerns:
 *   tell        a message for a desktop's host and owner (assistance
 *               decided on another node's admin API)
 *   assist_end  assistance ended through another node's admin API
 *   revoke      "User Stream Collaboration" turned off for a user
 *   lease       another node took a desktop: viewers waiting here go there
 *   event       an audit event, for this node's console subscribers
 * and it sends this node's console events to the others.  A node ignores
 * what it published itself (relay_cluster drops those).
 */
#ifndef ASP_RELAY_BUS_H
#define ASP_RELAY_BUS_H

struct relay;

/* After relay_cluster_open. */
void relay_bus_init(struct relay *r);

#endif
