"""Rewards on rendered sketches: SSIM, CLIP, a Quick, Draw! classifier, realism against real
drawings, dense and weighted forms.

A reward is a :class:`Reward`: ``reward(images, sketches) -> (B,)`` and
``reward.score(sketches)`` (renders with ``reward.render_options`` first). Build one by name with
``build_reward(name, options, device)``; ``REWARDS`` lists them.
"""

from sketchrl.rewards.base import Reward, WeightedSum
from sketchrl.rewards.classifier import ClassifierReward
from sketchrl.rewards.clip import CLIPReward, build_prompts
from sketchrl.rewards.dense import DenseReward, checkpoint_lengths, discounted_return
from sketchrl.rewards.realism import RealismReward
from sketchrl.rewards.registry import REWARDS, build_reward, reward_options
from sketchrl.rewards.ssim import SSIMReward, load_target_image

__all__ = [
    "REWARDS",
    "CLIPReward",
    "ClassifierReward",
    "DenseReward",
    "RealismReward",
    "Reward",
    "SSIMReward",
    "WeightedSum",
    "build_prompts",
    "build_reward",
    "checkpoint_lengths",
    "discounted_return",
    "load_target_image",
    "reward_options",
]
