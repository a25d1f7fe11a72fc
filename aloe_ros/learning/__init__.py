"""ALOE's learning core (torch, no ROS). DESIGN section 4; user guide in docs/learning.md.

batch          TransitionBatch: chunk transitions as tensors (+ actor target chunks)
replay         ChunkReplay: per-source sampling, online/historical relabelling, on disk
critic         CriticEnsemble: shared image trunk, K heads in one batched call; ValueNetwork
equations      one function per equation: TD target, aggregation, V, advantage, weights
aloe_trainer   ALOE's update (and 1-step TD on one-step chunks)
baselines      HG-DAgger, AWR with a Monte-Carlo value
factory        trainer / replay / critic from the task config (learning.method)
learner        Learner (replay + trainer + checkpoints) and LearnerWorker (background thread)
live_episodes  episodes assembled from live topics, for the node
checkpoints    policy directory + learner state, latest.json, resume
distributed    torchrun data parallelism (gradient all-reduce)
plots          PNG plots of a run
"""
