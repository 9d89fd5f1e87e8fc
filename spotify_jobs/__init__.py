"""spotify_jobs: the Dagster platform that runs a multi-tenant music-AI platform's batch jobs on Kubernetes."""

import warnings

# Partitioned asset checks (preview) and the tenant <-> tenant x time partition mappings (beta) are used on
# purpose; their warnings would otherwise print on every load of the code location and every CLI call.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
warnings.filterwarnings("ignore", message=".*(MultiToSingleDimensionPartitionMapping|MultiPartitionMapping)")
