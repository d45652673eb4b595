#!/usr/bin/env python3
"""When data-parallel training pays: a model of N hosts on 10/25/100 GbE (docs/distributed.md).

A ring allreduce moves 2(N-1)/N of the gradient's bytes through every host's link per step. The
backward reports blocks from the head down and the word embeddings last, so the allreduce can hide
behind the backward of the layers below except for the embeddings' bucket, which is only ready when the
backward ends: exposed = max(embedding bytes' time, all bytes' time - backward time).

    python3 scripts/distributed_model.py --step-seconds 3.8 --params 164397313 --embedding-params 78355200
"""
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--step-seconds", type=float, required=True, help="one training step of the global batch on one host")
parser.add_argument("--params", type=int, required=True)
parser.add_argument("--embedding-params", type=int, required=True, help="the word-embedding table's share of --params")
parser.add_argument("--backward-share", type=float, default=2 / 3, help="fraction of a step the backward takes")
parser.add_argument("--link-efficiency", type=float, default=0.8, help="fraction of the line rate TCP reaches")
args = parser.parse_args()

gradient = 4 * args.params
embedding = 4 * args.embedding_params
print(f"gradient {gradient / 1e6:.0f} MB (word embeddings {embedding / 1e6:.0f} MB); one host: {args.step_seconds:.2f} s per step")
print("| hosts | link | allreduce s | exposed s | step s (global batch split) | speed-up | step s (batch per host) | throughput ×|")
print("|---|---|---|---|---|---|---|---|")
for gbe in (10, 25, 100):
    rate = gbe / 8 * 1e9 * args.link_efficiency
    for hosts in (2, 4, 8, 16):
        ring = 2 * (hosts - 1) / hosts
        total = ring * gradient / rate
        tail = ring * embedding / rate
        for per_host, label in ((args.step_seconds / hosts, "split"), (args.step_seconds, "per host")):
            exposed = max(tail, total - args.backward_share * per_host)
            if label == "split":
                split_step, split_exposed = per_host + exposed, exposed
            else:
                weak_step = per_host + exposed
        print(f"| {hosts} | {gbe} GbE | {total:.2f} | {split_exposed:.2f} | {split_step:.2f} | {args.step_seconds / split_step:.1f}× "
              f"| {weak_step:.2f} | {hosts * args.step_seconds / weak_step:.1f}× |")
